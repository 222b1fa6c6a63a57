//! The real binary over real sockets: the behaviours of the core issue that
//! the differential corpus cannot show (keep-alive, pipelining, split
//! requests, limits, signals, start-up errors).

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Conn, Response, Server, fixture_tree, proc_status_kib, raw_request, tinyserve_bin};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

#[test]
fn banner_gives_the_port_and_files_are_served() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    assert!(server.port > 0);
    assert_eq!(
        server.banner,
        format!(
            "Serving HTTP on 127.0.0.1 port {p} (http://127.0.0.1:{p}/) ...",
            p = server.port
        )
    );
    let resp = Response::parse(&raw_request(server.addr(), &get("/withindex/other.txt"))).unwrap();
    assert_eq!(resp.status, Some(200));
    assert_eq!(resp.body, fs::read(fx.path("withindex/other.txt")).unwrap());
    assert_eq!(resp.header("Content-type"), Some("text/plain"));
    let line = server
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("GET /withindex/other.txt")
        })
        .expect("access log line");
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.ends_with("] \"GET /withindex/other.txt HTTP/1.1\" 200 -"),
        "{line}"
    );
}

/// After 10 s with nothing to do the server gives back the code pages
/// serving touched; what comes after is served as before (the pages come
/// back from the page cache).
#[test]
fn an_idle_server_gives_back_pages_and_serves_as_before() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let ask = |req: &[u8]| Response::parse(&raw_request(server.addr(), req)).unwrap();
    let before = [
        ask(&get("/withindex/other.txt")),
        ask(&get("/")),
        ask(&get("/missing")),
        ask(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,100-109\r\n\r\n"),
    ];
    let busy = proc_status_kib(server.pid(), "VmRSS").unwrap();
    std::thread::sleep(Duration::from_secs(12));
    let idle = proc_status_kib(server.pid(), "VmRSS").unwrap();
    assert!(
        idle < busy,
        "nothing given back: {busy} KiB busy, {idle} KiB idle"
    );
    let after = [
        ask(&get("/withindex/other.txt")),
        ask(&get("/")),
        ask(&get("/missing")),
        ask(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,100-109\r\n\r\n"),
    ];
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.status, a.status);
        assert_eq!(b.status_line, a.status_line);
        if b.status != Some(206) {
            // (a multipart answer's boundary is fresh each time)
            assert_eq!(b.body, a.body);
        } else {
            assert_eq!(a.body.len(), b.body.len());
        }
    }
    eprintln!("RSS {busy} KiB after requests, {idle} KiB after 12 s idle");
}

#[test]
fn head_sends_the_head_only() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let bytes = raw_request(server.addr(), b"HEAD /big.bin HTTP/1.1\r\n\r\n");
    let (resp, used) = Response::parse_head(&bytes).unwrap();
    assert_eq!(resp.status, Some(200));
    assert_eq!(resp.content_length(), Some(300_000));
    assert_eq!(used, bytes.len(), "HEAD must not send a body");
    let bytes = raw_request(server.addr(), b"HEAD /missing HTTP/1.1\r\n\r\n");
    let (resp, used) = Response::parse_head(&bytes).unwrap();
    assert_eq!(resp.status, Some(404));
    assert!(resp.content_length().unwrap() > 0);
    assert_eq!(used, bytes.len(), "HEAD error must not send the page");
}

#[test]
fn keep_alive_across_100_requests() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    let want = fs::read(fx.path("withindex/other.txt")).unwrap();
    for i in 0..100 {
        conn.send(&get("/withindex/other.txt")).unwrap();
        let resp = conn
            .read_response(false)
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(resp.status, Some(200));
        assert_eq!(resp.body, want);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    let mut batch = Vec::new();
    for p in [
        "/withindex/other.txt",
        "/big.bin",
        "/nope",
        "/withindex/other.txt",
    ] {
        batch.extend_from_slice(&get(p));
    }
    conn.send(&batch).unwrap();
    let a = conn.read_response(false).unwrap();
    let b = conn.read_response(false).unwrap();
    let c = conn.read_response(false).unwrap();
    assert_eq!(
        (a.status, b.status, c.status),
        (Some(200), Some(200), Some(404))
    );
    assert_eq!(b.body.len(), 300_000);
    // An error closes the connection, as Python does: the 4th is not answered.
    assert!(conn.closed_within(Duration::from_secs(5)).unwrap());
}

#[test]
fn a_request_split_into_single_bytes() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    conn.stream.set_nodelay(true).unwrap();
    for &b in get("/withindex/other.txt").iter() {
        conn.send(&[b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let resp = conn.read_response(false).unwrap();
    assert_eq!(resp.status, Some(200));
    assert_eq!(resp.body, fs::read(fx.path("withindex/other.txt")).unwrap());
}

#[test]
fn traversal_never_leaves_the_root() {
    let fx = fixture_tree();
    let outside = fx
        .root
        .parent()
        .unwrap()
        .join(format!("outside-{}.txt", std::process::id()));
    fs::write(&outside, b"SECRET-OUTSIDE").unwrap();
    let name = outside.file_name().unwrap().to_str().unwrap().to_owned();
    let server = Server::start(&["-d", fx.root_str()]);
    for t in [
        format!("/../{name}"),
        format!("/%2e%2e/{name}"),
        format!("/%2E%2E%2F{name}"),
        format!("/list/../../{name}"),
        format!("/..%2f..%2f{name}"),
        format!("/..\\{name}"),
        format!("/%5c..%5c{name}"),
        format!("//..//..//{name}"),
        format!("/./../{name}"),
        format!("/%252e%252e/{name}"),
        format!("/..%00/{name}"),
        format!("{}/{name}", fx.root.parent().unwrap().display()),
    ] {
        let bytes = raw_request(server.addr(), &get(&t));
        assert!(
            !bytes.windows(14).any(|w| w == b"SECRET-OUTSIDE"),
            "{t} escaped the root"
        );
        let resp = Response::parse(&bytes).unwrap();
        assert_eq!(resp.status, Some(404), "{t}");
    }
    let _ = fs::remove_file(outside);
}

#[test]
fn oversized_lines_and_too_many_headers() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut long_line = b"GET /".to_vec();
    long_line.resize(70_000, b'a');
    long_line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let resp = Response::parse(&raw_request(server.addr(), &long_line)).unwrap();
    assert_eq!(resp.status, Some(414));

    let mut long_header = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    long_header.resize(70_000, b'a');
    long_header.extend_from_slice(b"\r\n\r\n");
    let resp = Response::parse(&raw_request(server.addr(), &long_header)).unwrap();
    assert_eq!(resp.status, Some(431));
    assert!(resp.text().contains("Line too long"));

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let resp = Response::parse(&raw_request(server.addr(), &many)).unwrap();
    assert_eq!(resp.status, Some(431));
    assert!(resp.text().contains("Too many headers"));
}

#[test]
fn expect_100_continue_is_answered_first() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let bytes = raw_request(
        server.addr(),
        b"GET /withindex/other.txt HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    );
    assert!(bytes.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_get_body_is_skipped_and_the_connection_kept() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    conn.send(b"GET /withindex/other.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /withindex/other.txt HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, Some(200));
    assert_eq!(conn.read_response(false).unwrap().status, Some(200));
}

#[test]
fn http10_mode_closes_after_each_response() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str(), "-p", "HTTP/1.0"]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    conn.send(&get("/withindex/other.txt")).unwrap();
    let resp = conn.read_response(false).unwrap();
    assert_eq!(resp.status_line.as_deref(), Some("HTTP/1.0 200 OK"));
    assert!(conn.closed_within(Duration::from_secs(5)).unwrap());
}

#[test]
fn control_characters_are_escaped_in_the_log() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    raw_request(server.addr(), b"GET /\x1b[31mred\\ HTTP/1.1\r\n\r\n");
    let line = server
        .wait_for_log(Duration::from_secs(5), |l| l.contains("red"))
        .expect("log line");
    assert!(
        line.contains("\"GET /\\x1b[31mred\\\\ HTTP/1.1\" 404 -"),
        "{line}"
    );
}

#[test]
fn a_slow_client_does_not_stop_others() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let resp = Response::parse(&raw_request(server.addr(), &get("/withindex/other.txt"))).unwrap();
    assert_eq!(resp.status, Some(200));
    assert!(started.elapsed() < Duration::from_secs(2));
    slow.clear();
}

#[test]
fn a_file_that_shrinks_while_sent_ends_the_connection() {
    let fx = fixture_tree();
    let path = fx.path("shrinking.bin");
    fs::write(&path, vec![7u8; 32 << 20]).unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&get("/shrinking.bin")).unwrap();
    let mut first = [0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0);
    // The server is blocked on a full socket; cut the file short under it.
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the server must close, not hang");
    assert!(
        n + rest.len() < (32 << 20),
        "got the whole file after truncation"
    );
}

#[test]
fn sigterm_and_sigint_exit_cleanly_with_pythons_message() {
    let fx = fixture_tree();
    for signal in ["TERM", "INT"] {
        let mut server = Server::start(&["-d", fx.root_str()]);
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        let exit = loop {
            if let Some(s) = server.try_exit_status() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit on SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(exit.code(), Some(0), "SIG{signal}");
        std::thread::sleep(Duration::from_millis(100));
        let out = server.stdout_lines().join("\n");
        assert!(
            out.contains("Keyboard interrupt received, exiting."),
            "{out}"
        );
    }
}

fn run_fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(tinyserve_bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let (code, err) = run_fails(&["--no-such-flag"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tinyserve: "), "{err}");

    let (code, err) = run_fails(&["-d", "/definitely/not/here", "0"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/definitely/not/here"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let (code, err) = run_fails(&["-b", "127.0.0.1", &port]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("in use"), "{err}");

    let fx = fixture_tree();
    let locked = fx.path("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Root can read anything, so only check this when the test is not root.
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        let (code, err) = run_fails(&["-d", locked.to_str().unwrap(), "0"]);
        assert_eq!(code, 1, "{err}");
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Mistakes in the arguments exit 2 as argparse's do, with the value that
/// was wrong shown escaped on one line; only failures to start exit 1.
#[test]
fn argument_mistakes_exit_2_on_one_escaped_line() {
    for args in [
        &["-d", "--cgi", "0"][..],
        &["-b", "-q", "0"],
        &["-hb"],
        &["-Vx"],
        &["--max-connections", "0", "0"],
        &["-H", "Bad Name: 1", "0"],
        &["-H", "X: a\r\nY: b", "0"],
        &["-H", "Content-Length: 5", "0"],
        &["--cors", "-H", "Access-Control-Allow-Origin: x", "0"],
        &["-p", "\x1b[31mRED", "0"],
    ] {
        let (code, err) = run_fails(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\r'),
            "{args:?}: {err:?}"
        );
    }
    let (code, err) = run_fails(&["-b", "127.0.0.1\n\x07", "0"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("127.0.0.1\\n\\u{7}"), "{err:?}");
    let (code, err) = run_fails(&["-b", "[[::1]]]", "0"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn help_reads_well() {
    let out = Command::new(tinyserve_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--bind", "--directory", "--protocol", "--cgi", "[PORT]"] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}
