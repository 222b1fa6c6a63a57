//! Nothing a client or the file system does may stall the loop or grow
//! memory without a bound: a FIFO beside a file, a stderr nobody reads, a
//! huge directory listed to clients that never read, a short descriptor
//! table, heads that never end, sockets opened ahead of time. Each test
//! runs the hostile scenario and checks that an ordinary request is still
//! answered (within a generous bound: a stall was seconds, or for ever).
//!
//! Run: `cargo test --test stalls`

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn small_get(s: &Server) -> Duration {
    let started = Instant::now();
    let r = Response::parse(&raw_request(
        s.addr(),
        b"GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ))
    .expect("an answer");
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body, b"small\n");
    started.elapsed()
}

fn tree(tag: &str) -> TempTree {
    let t = TempTree::new(tag);
    t.file("small.txt", b"small\n");
    t
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn a_fifo_is_never_opened_not_as_a_twin_nor_as_an_index() {
    let t = tree("fifo");
    t.file("x.txt", b"plain\n");
    mkfifo(&t.path("x.txt.br"));
    t.dir("d");
    mkfifo(&t.path("d/index.html"));
    mkfifo(&t.path("pipe"));
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    // A writer waits for a reader on each FIFO: if the server opened one
    // for reading, its open() would return.
    let (tx, rx) = std::sync::mpsc::channel();
    for name in ["x.txt.br", "d/index.html", "pipe"] {
        let path = t.path(name);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let opened = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
            let _ = tx.send((path, opened));
        });
    }
    let ask = |req: &[u8]| Response::parse(&raw_request(s.addr(), req)).expect("an answer");
    let r = ask(b"GET /x.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, gzip\r\n\r\n");
    assert_eq!((r.status, &r.body[..]), (Some(200), &b"plain\n"[..]));
    assert_eq!(r.header("Content-Encoding"), None);
    let r = ask(b"GET /d/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, Some(200));
    assert!(String::from_utf8_lossy(&r.body).contains("Directory listing"));
    let r = ask(b"GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, Some(404));
    assert!(small_get(&s) < Duration::from_secs(2));
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the server opened a FIFO for reading"
    );
    // Release the writers.
    for name in ["x.txt.br", "d/index.html", "pipe"] {
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(t.path(name));
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[test]
fn a_stderr_nobody_reads_never_blocks_the_loop() {
    let t = tree("logpipe");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = KillOnDrop(
        Command::new(tinyserve_bin())
            .args(["-b", "127.0.0.1", "-d", t.root_str(), "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let port = parse_banner_port(&banner).expect("banner");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // ~3000 log lines of ~80 bytes: far more than a pipe holds.
    let mut c = Conn::connect(addr).unwrap();
    let started = Instant::now();
    for i in 0..3000 {
        c.send(format!("GET /small.txt?{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let r = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("request {i} not answered: {e}"));
        assert_eq!(r.status, Some(200));
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    // Drain the pipe; the next turn of the loop reports what was dropped.
    let mut stderr = child.stderr.take().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stderr);
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !String::from_utf8_lossy(&log).contains("log lines dropped")
    {
        let mut buf = [0u8; 65536];
        match stderr.read(&mut buf) {
            Ok(n) if n > 0 => log.extend_from_slice(&buf[..n]),
            _ => {
                let _ = c.send(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n");
                let _ = c.read_response(false);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("log lines dropped"),
        "{}",
        &log[log.len().saturating_sub(300)..]
    );
}

/// A directory of its own on tmpfs (`/dev/shm`), where 100,000 files take
/// a second to make, not the 13 s they take on this disk; removed on drop.
struct ShmDir(std::path::PathBuf);

impl ShmDir {
    fn new(tag: &str) -> ShmDir {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let p = std::path::PathBuf::from(format!("{base}/tinyserve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("big")).unwrap();
        std::fs::write(p.join("small.txt"), b"small\n").unwrap();
        ShmDir(p)
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_huge_listing_to_clients_that_never_read_costs_them_a_cursor() {
    let t = ShmDir::new("biglist");
    let dir = t.0.join("big");
    // About 8 MB of page: more than the kernel buffers of a socket hold.
    const N: usize = 100_000;
    for i in 0..N {
        std::fs::File::create(dir.join(format!("entry-{i:06}-{}", "x".repeat(i % 40)))).unwrap();
    }
    let s = Server::tinyserve_with(&t.0, "HTTP/1.1", &["-q"]);
    let rss_before = proc_status_kib(s.pid(), "VmRSS").unwrap();
    let hogs: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.write_all(b"GET /big/ HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let waited = small_get(&s);
        assert!(
            waited < Duration::from_secs(1),
            "a small GET waited {waited:?}"
        );
    }
    let peak = proc_status_kib(s.pid(), "VmHWM").unwrap();
    // One shared listing (some 8 MB for 100,000 entries), not 30 pages.
    assert!(
        peak < rss_before + 20 * 1024,
        "peak RSS {peak} KiB, {rss_before} KiB before"
    );
    // A reader gets the whole page, as long as it says.
    let r = Response::parse(&raw_request(
        s.addr(),
        b"GET /big/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(r.content_length(), Some(r.body.len()));
    assert_eq!(String::from_utf8_lossy(&r.body).matches("<li>").count(), N);
    drop(hogs);
}

#[test]
fn a_short_descriptor_table_never_turns_a_file_into_a_404() {
    let t = tree("nofile");
    for i in 0..600 {
        t.file(&format!("f/{i}.txt"), format!("file {i}\n").as_bytes());
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -n 256 && exec {} -b 127.0.0.1 -d {} -q 0",
        tinyserve_bin(),
        t.root_str()
    ));
    let s = Server::spawn(cmd, "tinyserve (ulimit -n 256)".into());
    let mut c = Conn::connect(s.addr()).unwrap();
    for i in 0..600 {
        c.send(format!("GET /f/{i}.txt HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let r = c.read_response(false).unwrap();
        assert_ne!(r.status, Some(404), "file {i} exists");
        if r.status == Some(503) {
            assert_eq!(r.header("Retry-After"), Some("1"));
            c = Conn::connect(s.addr()).unwrap();
            continue;
        }
        assert_eq!(r.body, format!("file {i}\n").into_bytes());
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .count();
    assert!(fds < 256, "{fds} descriptors open");
}

/// The inotify watches a process holds, from `/proc/PID/fdinfo`.
fn inotify_watches(pid: u32) -> usize {
    let mut n = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        if let Ok(info) = std::fs::read_to_string(fd.path()) {
            n += info
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count();
        }
    }
    n
}

#[test]
fn inotify_watches_are_bounded_and_released_with_their_entries() {
    let t = tree("watches");
    for i in 0..3000 {
        t.file(&format!("d{i}/f.txt"), b"x\n");
    }
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q"]);
    let mut c = Conn::connect(s.addr()).unwrap();
    for i in 0..3000 {
        c.send(format!("GET /d{i}/f.txt HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(c.read_response(false).unwrap().status, Some(200));
    }
    let watches = inotify_watches(s.pid());
    assert!(watches <= 2048, "{watches} inotify watches");
    assert!(watches > 0);
}

#[test]
fn oversized_unfinished_heads_share_a_bounded_budget() {
    let t = tree("heads");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q", "--max-connections", "2000"]);
    let base = proc_status_kib(s.pid(), "VmRSS").unwrap();
    let addr = s.addr();
    // 800 connections, each 130 KB of a head that never ends.
    let line = format!("X-Big: {}\r\n", "a".repeat(64 * 1024 - 20));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let line = line.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for _ in 0..100 {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        continue;
                    };
                    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
                    let _ = c.write_all(line.as_bytes());
                    let _ = c.write_all(line.as_bytes());
                    held.push(c);
                }
                held
            })
        })
        .collect();
    let held: Vec<Vec<TcpStream>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(small_get(&s) < Duration::from_secs(2));
    let peak = proc_status_kib(s.pid(), "VmHWM").unwrap();
    assert!(
        peak < base + 24 * 1024,
        "peak RSS {peak} KiB (from {base} KiB) for 800 unfinished heads"
    );
    // Some of them were told why they were dropped.
    let mut told = 0;
    for mut c in held.into_iter().flatten().take(200) {
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut buf = [0u8; 32];
        if c.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.1 431"))
        {
            told += 1;
        }
    }
    assert!(told > 0, "no head got 431");
}

#[test]
fn at_the_connection_limit_silent_sockets_make_room_for_a_new_client() {
    let t = tree("preopened");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["--max-connections", "50"]);
    // A browser opens sockets ahead of time and sends nothing on them.
    let silent: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(s.addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let waited = small_get(&s);
    assert!(
        waited < Duration::from_secs(3),
        "a new client waited {waited:?} behind sockets that sent nothing"
    );
    drop(silent);
}

/// Slow heads at the limit make room at once: they have shown what they
/// are (only a connection that has sent nothing gets a moment's grace).
#[test]
fn at_the_connection_limit_slow_heads_do_not_lock_out_a_new_client() {
    let t = tree("slowheads");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q", "--max-connections", "20"]);
    let slow: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let mut c = TcpStream::connect(s.addr()).ok()?;
            c.write_all(b"G").ok()?;
            Some(c)
        })
        .collect();
    assert!(slow.len() >= 200, "only {} connected", slow.len());
    std::thread::sleep(Duration::from_millis(200));
    let waited = small_get(&s);
    assert!(
        waited < Duration::from_secs(3),
        "a new client waited {waited:?} behind 300 one-byte heads at a limit of 20"
    );
    drop(slow);
}

/// 2000 clients at once, each sending its request at once: the listener
/// overflows, the kernel answers with SYN cookies and hands over
/// connections before their requests arrive. At the connection limit
/// those must not be taken for silent sockets and closed to make room:
/// every client gets its whole answer.
#[test]
fn at_the_connection_limit_a_burst_of_clients_is_answered_whole() {
    const BURST: &str = r#"
import socket, sys, time, selectors, resource
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 100 if hard == resource.RLIM_INFINITY else min(hard, n + 100)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
sel = selectors.DefaultSelector(); bufs = {}
for _ in range(n):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    sel.register(s, selectors.EVENT_WRITE); bufs[s] = None
ok = bad = err = 0; t0 = time.time()
while sel.get_map() and time.time() - t0 < 30:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            if bufs[s] is None:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise ConnectionError
                s.send(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                bufs[s] = bytearray(); sel.modify(s, selectors.EVENT_READ); continue
            d = s.recv(65536)
            if d: bufs[s] += d; continue
            if bytes(bufs[s]).endswith(b"\r\n\r\nsmall\n"): ok += 1
            else: bad += 1
        except ConnectionError:
            err += 1
        sel.unregister(s); s.close()
print(ok, bad, err, len(sel.get_map()))
"#;
    let t = tree("burst");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q", "--max-connections", "50"]);
    let out = python()
        .command()
        .args(["-c", BURST, &s.addr().port().to_string(), "2000"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<usize> = said
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(
        counts,
        [2000, 0, 0, 0],
        "answered whole, cut or empty, reset, unanswered"
    );
}

#[test]
fn listings_of_many_directories_at_once_stay_within_the_budget() {
    let t = ShmDir::new("manylists");
    // 24 directories of 8000 entries with 200-byte names: about 4 MiB of
    // listing each, three times the 32 MiB budget together.
    for d in 0..24 {
        let dir = t.0.join(format!("d{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..8000 {
            std::fs::File::create(dir.join(format!("{i:06}{}", "n".repeat(194)))).unwrap();
        }
    }
    let s = Server::tinyserve_with(&t.0, "HTTP/1.1", &["-q"]);
    // One client each, all at once, none reading: every build is under way
    // before any is done.
    let clients: Vec<TcpStream> = (0..24)
        .map(|d| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.write_all(format!("GET /d{d:02}/ HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (mut ok, mut busy) = (0, 0);
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0u8; 64];
        let n = c.read(&mut head).unwrap();
        let line = String::from_utf8_lossy(&head[..n]);
        if line.starts_with("HTTP/1.1 200") {
            ok += 1;
        } else if line.starts_with("HTTP/1.1 503 Server busy: too many large listings") {
            busy += 1;
        } else {
            panic!("{line}");
        }
    }
    let peak_mib = proc_status_kib(s.pid(), "VmHWM").unwrap() / 1024;
    assert!(ok >= 1 && busy >= 1, "{ok} served, {busy} told to retry");
    assert!(peak_mib < 48, "peak RSS {peak_mib} MiB, budget 32 MiB");
}
