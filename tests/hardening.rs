//! Hostile clients and faults over real sockets: half-sent requests,
//! clients killed mid-transfer, stalled readers, FIFOs, the connection
//! limit, timeouts and a graceful stop. Each checks that the server keeps
//! serving others and that no descriptor leaks.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Response, Server, fixture_tree, raw_request};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits until the server's descriptor count is back to `baseline`.
fn fds_settle(pid: u32, baseline: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = open_fds(pid);
        if now <= baseline || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_serves(server: &Server) {
    let started = Instant::now();
    let resp = Response::parse(&raw_request(server.addr(), &get("/withindex/other.txt"))).unwrap();
    assert_eq!(resp.status, Some(200));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn two_hundred_half_requests_do_not_delay_a_normal_get() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let half: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            let part: &[u8] = if i % 2 == 0 {
                b"GET /big.bin HTTP/1.1\r\nHost"
            } else {
                b"GE"
            };
            s.write_all(part).unwrap();
            s
        })
        .collect();
    assert_serves(&server);
    drop(half);
}

#[test]
fn clients_killed_mid_transfer_leak_nothing() {
    let fx = fixture_tree();
    fs::write(fx.path("large.bin"), vec![9u8; 4 << 20]).unwrap();
    let server = Server::start(&["-d", fx.root_str(), "-q"]);
    assert_serves(&server);
    // Files once served stay open in the cache: serve them before counting.
    raw_request(server.addr(), &get("/large.bin"));
    raw_request(server.addr(), &get("/big.bin"));
    let baseline = open_fds(server.pid());
    for i in 0..1000 {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        let path = if i % 2 == 0 { "/large.bin" } else { "/big.bin" };
        s.write_all(&get(path)).unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        // Closing with unread data sends a reset in the middle of the body.
    }
    let settled = fds_settle(server.pid(), baseline, Duration::from_secs(10));
    assert_eq!(
        settled, baseline,
        "descriptors: {baseline} before, {settled} after"
    );
    assert_serves(&server);
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let fx = fixture_tree();
    let fifo = fx.path("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let server = Server::start(&["-d", fx.root_str()]);
    let resp = Response::parse(&raw_request(server.addr(), &get("/pipe"))).unwrap();
    assert_eq!(resp.status, Some(404));
    assert_serves(&server);
}

#[test]
fn the_connection_limit_pauses_accepting_without_spinning() {
    let fx = fixture_tree();
    fs::write(fx.path("large.bin"), vec![7u8; 32 << 20]).unwrap();
    let server = Server::start(&["-d", fx.root_str(), "--max-connections", "5"]);
    // Busy connections (downloads their clients do not read) cannot be
    // evicted; connections waiting for a head could be. The server takes
    // one more than the limit, then stops accepting.
    let held: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(&get("/large.bin")).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The seventh waits in the backlog: the server does not take it...
    let mut waiting = TcpStream::connect(server.addr()).unwrap();
    waiting.write_all(&get("/withindex/other.txt")).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(waiting.read(&mut buf).is_err(), "answered beyond the limit");
    // ...and it does not burn the CPU meanwhile.
    let cpu = |pid: u32| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu(server.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert!(cpu(server.pid()) - before < 10, "busy while at the limit");
    // Once a connection goes, the waiting one is served.
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = waiting.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn timeouts_end_slow_heads_idle_connections_and_stalled_readers() {
    let fx = fixture_tree();
    fs::write(fx.path("large.bin"), vec![9u8; 32 << 20]).unwrap();
    let server = Server::start(&[
        "-d",
        fx.root_str(),
        "--header-timeout",
        "1",
        "--idle-timeout",
        "1",
        "--send-timeout",
        "1",
    ]);
    // Files once served stay open in the cache: serve them before counting.
    raw_request(server.addr(), &get("/large.bin"));
    assert_serves(&server);
    let baseline = open_fds(server.pid());

    // A head that never ends gets 408.
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: 1\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    // An idle keep-alive connection is closed.
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(&get("/withindex/other.txt")).unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(all.starts_with(b"HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "idle connection kept {:?}",
        started.elapsed()
    );

    // A client that stops reading a large body is dropped.
    let mut stalled = TcpStream::connect(server.addr()).unwrap();
    stalled.write_all(&get("/large.bin")).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    drop(stalled);
    assert_eq!(
        fds_settle(server.pid(), baseline, Duration::from_secs(5)),
        baseline
    );
    assert!(
        server
            .wait_for_log(Duration::from_secs(1), |l| l.contains("Response abandoned"))
            .is_some(),
        "stall not logged"
    );
    assert_serves(&server);
}

#[test]
fn sigterm_lets_a_download_in_flight_finish() {
    let fx = fixture_tree();
    let size = 8 << 20;
    fs::write(fx.path("large.bin"), vec![5u8; size]).unwrap();
    let mut server = Server::start(&["-d", fx.root_str()]);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&get("/large.bin")).unwrap();
    let mut first = [0u8; 4096];
    let mut got = s.read(&mut first).unwrap();
    // SAFETY: kill with a pid we started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    got += rest.len();
    let head_len = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        got - head_len,
        size,
        "the download was cut short by the stop"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.try_exit_status() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn at_the_limit_idle_keep_alive_connections_make_room() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str(), "--max-connections", "5"]);
    let idle: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(&get("/withindex/other.txt")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            assert!(s.read(&mut buf).unwrap() > 0);
            s
        })
        .collect();
    // All five are idle keep-alive connections: a new client is served.
    assert_serves(&server);
    drop(idle);
}
