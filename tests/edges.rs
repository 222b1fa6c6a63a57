//! Edge cases found by an independent review of the hostile-input work
//! (round 2), each over real sockets against the real binary: trailers
//! that are requests, control bytes in redirects, repeated header lines,
//! bad Host values, stale or empty pre-compressed twins, and a connection
//! limit past what the descriptors allow.

mod support;

use std::fs;
use std::time::Duration;
use support::{Response, Server, TempTree, raw_request_answered};

fn site() -> (TempTree, Server) {
    let t = TempTree::new("edges");
    t.file("a.txt", b"aaaa\n");
    t.dir("dir");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q"]);
    (t, s)
}

fn exchange(s: &Server, req: &[u8]) -> Vec<u8> {
    raw_request_answered(s.addr(), req, Duration::from_secs(5)).bytes
}

#[test]
fn a_request_sent_as_chunked_trailers_is_never_answered() {
    let (_t, s) = site();
    let raw = exchange(
        &s,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\nGET /nonexist HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains("404"),
        "the trailer was read as a request: {text}"
    );
    assert!(text.matches("HTTP/1.1 ").count() <= 1, "{text}");
    for bad in [&b"X T"[..], b"X : a"] {
        let mut req =
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b"\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = String::from_utf8_lossy(&exchange(&s, &req)).into_owned();
        assert!(text.matches("HTTP/1.1 200").count() <= 1, "{text}");
    }
}

#[test]
fn a_redirect_never_carries_control_bytes() {
    let (_t, s) = site();
    let raw = exchange(
        &s,
        b"GET /dir?\x01x\x1b[31m\x7f#f\x08 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let r = Response::parse(&raw).unwrap();
    assert_eq!(r.status, Some(301));
    assert_eq!(r.header("Location"), Some("/dir/?%01x%1B[31m%7F#f%08"));
}

#[test]
fn connection_close_on_any_line_closes() {
    let (_t, s) = site();
    let raw = exchange(
        &s,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n\
          GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
}

#[test]
fn a_repeated_date_condition_is_ignored_and_a_bad_host_refused() {
    let (_t, s) = site();
    let raw = exchange(
        &s,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\
          If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(Response::parse(&raw).unwrap().status, Some(200));
    let raw = exchange(
        &s,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(Response::parse(&raw).unwrap().status, Some(304));
    for host in ["a b", "a@b", "x/y", "h\u{e9}"] {
        let req = format!("GET /a.txt HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let r = Response::parse(&exchange(&s, req.as_bytes())).unwrap();
        assert_eq!(
            (r.status, r.reason.as_deref()),
            (Some(400), Some("Bad Host header")),
            "{host}"
        );
    }
}

#[test]
fn stale_or_empty_twins_are_not_served_and_a_416_says_vary() {
    let t = TempTree::new("edges-twins");
    t.file("old.js", b"new content\n");
    t.file("old.js.gz", b"GZ");
    // The twin is older than the file: it holds old content.
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(t.path("old.js.gz"))
        .unwrap()
        .set_modified(past)
        .unwrap();
    t.file("empty.js", b"content\n");
    t.file("empty.js.gz", b"");
    t.file("good.js", b"content\n");
    t.file("good.js.gz", b"GZIP-BYTES");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q"]);
    for (path, body, coding) in [
        ("/old.js", &b"new content\n"[..], None),
        ("/empty.js", b"content\n", None),
        ("/good.js", b"GZIP-BYTES", Some("gzip")),
    ] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        );
        let r = Response::parse(&exchange(&s, req.as_bytes())).unwrap();
        assert_eq!(r.body, body, "{path}");
        assert_eq!(r.header("Content-Encoding"), coding, "{path}");
    }
    let r = Response::parse(&exchange(
        &s,
        b"GET /good.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nRange: bytes=99999-\r\nConnection: close\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(r.status, Some(416));
    assert_eq!(r.header("Content-Range"), Some("bytes */10"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
}

#[test]
fn a_connection_limit_past_the_descriptors_is_lowered_and_said() {
    let t = TempTree::new("edges-maxconn");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["--max-connections", "100000000"]);
    let note = s.wait_for_log(Duration::from_secs(3), |l| l.contains("--max-connections"));
    let note = note.expect("a note at start-up");
    assert!(
        note.contains("more than the open-file limit leaves room for; using"),
        "{note}"
    );
}
