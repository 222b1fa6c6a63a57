//! Where a request ends must never be in doubt (RFC 9112 2.2, 3.2, 5, 6.3):
//! every head whose framing two parsers could read differently gets 400
//! (or 501) and the connection closes, so a body can never be answered as
//! a request. Each test sends the head followed by a pipelined second
//! request and checks that exactly one answer comes back, then EOF.
//!
//! Run: `cargo test --test smuggling`

mod support;

use std::time::Duration;
use support::*;

/// Sends `bytes` (no half-close), reads until EOF or 3 s, and returns the
/// responses and whether the server closed.
fn exchange(server: &Server, bytes: &[u8]) -> (Vec<Response>, bool) {
    let raw = raw_request_opts(server.addr(), bytes, false, Duration::from_secs(3));
    let closed = raw.end.is_ok();
    let responses = Response::parse_stream(&raw.bytes, false)
        .unwrap_or_else(|e| panic!("unparsable answer {e}: {}", escape_bytes(&raw.bytes, 400)));
    (responses, closed)
}

/// The head (with `Host: x`) plus a 35-byte body that is itself a request.
fn smuggle(line: &str, headers: &[&[u8]]) -> Vec<u8> {
    let mut req = format!("{line}\r\nHost: x\r\n").into_bytes();
    for h in headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(b"GET /nonexist HTTP/1.1\r\nHost: x\r\n\r\n");
    req
}

fn assert_refused(server: &Server, what: &str, req: &[u8], status: u16) {
    let (responses, closed) = exchange(server, req);
    let statuses: Vec<Option<u16>> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![Some(status)],
        "{what}: {}",
        escape_bytes(req, 200)
    );
    let r = &responses[0];
    assert_eq!(r.header("Connection"), Some("close"), "{what}");
    assert!(
        parse_error_body(&r.body).is_some_and(|(code, _)| code == status),
        "{what}: not Python's error page: {}",
        escape_bytes(&r.body, 200)
    );
    assert!(closed, "{what}: the connection stayed open");
}

fn server() -> (TempTree, Server) {
    let t = TempTree::new("smuggling");
    t.file("small.txt", b"small\n");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    (t, s)
}

#[test]
fn malformed_header_lines_are_400_and_close_never_a_second_answer() {
    let (_t, s) = server();
    for (what, header) in [
        ("space before the colon", &b"Content-Length : 35"[..]),
        ("tab before the colon", b"Content-Length\t: 35"),
        ("bare CR inside a line", b"X-A: a\rContent-Length: 35"),
        ("space inside a field name", b"Content Length: 35"),
        ("NUL inside a field name", b"Content\x00Length: 35"),
        ("NUL in a value", b"X-A: a\x00b"),
        ("a line without a colon", b"NoColonHere"),
        ("bracket in a field name", b"X-Invalid[]: test"),
        ("BEL in a value", b"X-Bad-Control-Char: test\x07"),
        ("vertical tab before a length", b"Content-Length: \x0b35"),
    ] {
        assert_refused(
            &s,
            what,
            &smuggle("GET /small.txt HTTP/1.1", &[header]),
            400,
        );
    }
    // An obs-fold continuation: refused, never dropped with what follows.
    assert_refused(
        &s,
        "obs-fold",
        &smuggle(
            "GET /small.txt HTTP/1.1",
            &[b"X-Folded: a", b" Content-Length: 35"],
        ),
        400,
    );
}

#[test]
fn bad_or_conflicting_content_length_is_400_and_close() {
    let (_t, s) = server();
    for value in [
        "+35",
        "-35",
        "abc",
        "0x23",
        "35 35",
        "99999999999999999999999999999",
        "-123456789123456789123456789",
        "",
        "35, 0",
        "0, 35",
    ] {
        let header = format!("Content-Length: {value}");
        assert_refused(
            &s,
            &header,
            &smuggle("GET /small.txt HTTP/1.1", &[header.as_bytes()]),
            400,
        );
    }
    assert_refused(
        &s,
        "two different lengths",
        &smuggle(
            "GET /small.txt HTTP/1.1",
            &[b"Content-Length: 35", b"Content-Length: 0"],
        ),
        400,
    );
}

#[test]
fn transfer_encoding_other_than_a_final_chunked_is_refused() {
    let (_t, s) = server();
    for (te, status) in [
        ("chunked, gzip", 400),
        ("identity", 400),
        ("gzip", 400),
        ("chunked, chunked", 400),
        ("gzip, chunked", 501),
    ] {
        let header = format!("Transfer-Encoding: {te}");
        assert_refused(
            &s,
            &header,
            &smuggle("POST /small.txt HTTP/1.1", &[header.as_bytes()]),
            status,
        );
    }
    assert_refused(
        &s,
        "Transfer-Encoding with Content-Length",
        &smuggle(
            "GET /small.txt HTTP/1.1",
            &[b"Content-Length: 35", b"Transfer-Encoding: chunked"],
        ),
        400,
    );
    assert_refused(
        &s,
        "Transfer-Encoding in HTTP/1.0",
        &smuggle("GET /small.txt HTTP/1.0", &[b"Transfer-Encoding: chunked"]),
        400,
    );
}

#[test]
fn two_host_lines_are_400_but_no_host_keeps_pythons_answer() {
    let (_t, s) = server();
    assert_refused(
        &s,
        "two Host lines",
        b"GET /small.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
    // CPython's own tests send HTTP/1.1 without Host: the CLI answers them.
    let (r, _) = exchange(&s, b"GET /small.txt HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Some(200));
}

#[test]
fn a_well_framed_chunked_body_is_stepped_over_and_the_next_request_answered() {
    let (_t, s) = server();
    let req = b"GET /small.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                23\r\nGET /nonexist HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n\
                GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (r, closed) = exchange(&s, req);
    let statuses: Vec<Option<u16>> = r.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![Some(200), Some(200)],
        "the body was answered"
    );
    assert!(closed);
    // A malformed chunk size after the answer: the connection just ends.
    let (r, closed) = exchange(
        &s,
        b"GET /small.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          -5\r\nGET /nonexist HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.len(), 1);
    assert!(closed);
}

#[test]
fn absolute_form_targets_are_served_as_their_path() {
    let (_t, s) = server();
    let (r, _) = exchange(
        &s,
        b"GET http://127.0.0.1:8000/small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r[0].status, Some(200));
    assert_eq!(r[0].body, b"small\n");
}

/// Leading slashes of an absolute-form path are collapsed as an origin-form
/// target's are (gh-87389): the directory redirect stays on this host.
#[test]
fn absolute_form_slashes_never_redirect_to_another_host() {
    let (t, s) = server();
    t.dir("evil.com");
    for target in ["http://x//evil.com", "http://x///evil.com", "//evil.com"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (r, _) = exchange(&s, req.as_bytes());
        assert_eq!(r[0].status, Some(301), "{target}");
        assert_eq!(r[0].header("Location"), Some("/evil.com/"), "{target}");
    }
}

#[test]
fn cors_never_echoes_a_value_that_is_not_a_list_of_names() {
    let t = TempTree::new("cors");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["--cors"]);
    let ask = |value: &[u8]| {
        let mut req = b"OPTIONS /x HTTP/1.1\r\nHost: x\r\nOrigin: http://o\r\n\
                        Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: "
            .to_vec();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let (r, _) = exchange(&s, &req);
        r.into_iter().next().expect("an answer")
    };
    let r = ask(b"x-a, Content-Type");
    assert_eq!(r.status, Some(204));
    assert_eq!(
        r.header("Access-Control-Allow-Headers"),
        Some("x-a, Content-Type")
    );
    // A bare CR in a request header is refused before anything is echoed.
    let r = ask(b"x\rSet-Cookie: session=attacker");
    assert_eq!(r.status, Some(400));
    assert!(r.header("Set-Cookie").is_none());
    for odd in [&b"x y"[..], b"x;y", b"\"quoted\"", b"a,,b"] {
        let r = ask(odd);
        assert_eq!(r.status, Some(204));
        assert_eq!(
            r.header("Access-Control-Allow-Headers"),
            None,
            "{}",
            escape_bytes(odd, 40)
        );
    }
}

#[test]
fn a_nul_bound_for_a_cgi_script_is_400_not_500() {
    let t = TempTree::new("cgi-nul");
    t.script(
        "cgi-bin/env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv\n",
    );
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["--cgi"]);
    let (r, closed) = exchange(
        &s,
        b"GET /cgi-bin/env.sh HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Some(400));
    assert!(closed);
    let (r, _) = exchange(&s, b"GET /cgi-bin/env.sh/a%00b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        matches!(r[0].status, Some(400 | 404)),
        "{:?}",
        r[0].status_line
    );
    let (r, _) = exchange(
        &s,
        b"GET /cgi-bin/env.sh?a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r[0].status, Some(400), "{:?}", r[0].status_line);
}
