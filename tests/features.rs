//! What tinyserve does beyond Python, over real sockets: Range, validators,
//! extra headers, CORS, pre-compressed files, the rich listing, symlink
//! containment, quiet mode, and the file cache seeing changes at once.

mod support;

use std::fs;
use std::time::Duration;
use support::{Conn, Response, Server, fixture_tree, raw_request};

fn request(server: &Server, head: &str) -> Response {
    let raw = format!("{head}\r\n\r\n");
    Response::parse(&raw_request(server.addr(), raw.as_bytes())).unwrap()
}

fn get_with(server: &Server, path: &str, headers: &[&str]) -> Response {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: x");
    for h in headers {
        head.push_str("\r\n");
        head.push_str(h);
    }
    request(server, &head)
}

fn digits() -> Vec<u8> {
    (0..1000u32).map(|i| b'0' + (i % 10) as u8).collect()
}

#[test]
fn single_ranges_are_206_with_content_range() {
    let fx = fixture_tree();
    fs::write(fx.path("d.txt"), digits()).unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=5-5000", 5, 999),
    ] {
        let r = get_with(&server, "/d.txt", &[&format!("Range: {range}")]);
        assert_eq!(r.status, Some(206), "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {start}-{end}/1000").as_str())
        );
        assert_eq!(r.body, digits()[start..=end].to_vec(), "{range}");
    }
    let whole = get_with(&server, "/d.txt", &[]);
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    // Large files go out with sendfile from the offset.
    let big = get_with(&server, "/big.bin", &["Range: bytes=100000-100009"]);
    assert_eq!(big.status, Some(206));
    assert_eq!(
        big.body,
        fs::read(fx.path("big.bin")).unwrap()[100_000..100_010].to_vec()
    );
}

#[test]
fn bad_and_unsatisfiable_ranges() {
    let fx = fixture_tree();
    fs::write(fx.path("d.txt"), digits()).unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let r = get_with(&server, "/d.txt", &["Range: bytes=5000-"]);
    assert_eq!(r.status, Some(416));
    assert_eq!(r.header("Content-Range"), Some("bytes */1000"));
    let huge = format!("Range: bytes={}", "1-2,".repeat(10_000));
    for bad in [
        "Range: bytes=9-3",
        "Range: bytes=abc",
        "Range: items=0-1",
        "Range: bytes=99999999999999999999999999-1",
        &huge,
    ] {
        let r = get_with(&server, "/d.txt", &[bad]);
        assert_eq!(r.status, Some(200), "{}", &bad[..bad.len().min(40)]);
        assert_eq!(r.body.len(), 1000);
    }
}

#[test]
fn several_ranges_are_multipart() {
    let fx = fixture_tree();
    fs::write(fx.path("d.txt"), digits()).unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let r = get_with(&server, "/d.txt", &["Range: bytes=0-1,10-12"]);
    assert_eq!(r.status, Some(206));
    let ct = r.header("Content-Type").unwrap().to_owned();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(r.content_length(), Some(r.body.len()));
    assert!(
        body.contains("Content-Range: bytes 0-1/1000\r\n\r\n01\r\n"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 10-12/1000\r\n\r\n012\r\n"),
        "{body}"
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
}

#[test]
fn validators_and_conditional_requests() {
    let fx = fixture_tree();
    fs::write(fx.path("d.txt"), digits()).unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let first = get_with(&server, "/d.txt", &[]);
    let etag = first.header("ETag").expect("ETag").to_owned();
    let lm = first.header("Last-Modified").unwrap().to_owned();
    assert!(etag.starts_with('"'));
    for inm in [
        etag.clone(),
        format!("\"nope\", {etag}"),
        "*".into(),
        format!("W/{etag}"),
    ] {
        let r = get_with(&server, "/d.txt", &[&format!("If-None-Match: {inm}")]);
        assert_eq!(r.status, Some(304), "{inm}");
        assert!(r.body.is_empty());
    }
    // If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    let r = get_with(
        &server,
        "/d.txt",
        &[
            "If-None-Match: \"other\"",
            &format!("If-Modified-Since: {lm}"),
        ],
    );
    assert_eq!(r.status, Some(200));
    let r = get_with(&server, "/d.txt", &[&format!("If-Modified-Since: {lm}")]);
    assert_eq!(r.status, Some(304));
    let r = get_with(&server, "/d.txt", &["If-Match: \"other\""]);
    assert_eq!(r.status, Some(412));
    // If-Range: a matching tag gives the range, a stale one the whole file.
    let r = get_with(
        &server,
        "/d.txt",
        &["Range: bytes=0-1", &format!("If-Range: {etag}")],
    );
    assert_eq!(r.status, Some(206));
    let r = get_with(
        &server,
        "/d.txt",
        &["Range: bytes=0-1", "If-Range: \"stale\""],
    );
    assert_eq!(r.status, Some(200));
    let r = get_with(
        &server,
        "/d.txt",
        &["Range: bytes=0-1", &format!("If-Range: {lm}")],
    );
    assert_eq!(r.status, Some(206));
}

#[test]
fn extra_headers_cors_and_no_cache() {
    let fx = fixture_tree();
    let server = Server::start(&[
        "-d",
        fx.root_str(),
        "-H",
        "X-One: 1",
        "--header",
        "X-Two: two words",
        "--cors",
        "--no-cache",
    ]);
    for path in ["/a.txt", "/missing", "/list/"] {
        let r = get_with(&server, path, &[]);
        assert_eq!(r.header("X-One"), Some("1"), "{path}");
        assert_eq!(r.header("X-Two"), Some("two words"), "{path}");
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"), "{path}");
        assert_eq!(
            r.header("Access-Control-Expose-Headers"),
            Some("Content-Length, Content-Range, Accept-Ranges, ETag"),
            "{path}"
        );
        assert_eq!(r.header("Cache-Control"), Some("no-store"), "{path}");
    }
    let pre = request(
        &server,
        "OPTIONS /a.txt HTTP/1.1\r\nOrigin: http://example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: X-Custom",
    );
    assert_eq!(pre.status, Some(204));
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(
        pre.header("Access-Control-Allow-Methods")
            .unwrap()
            .contains("GET")
    );
    assert_eq!(pre.header("Access-Control-Allow-Headers"), Some("X-Custom"));

    // Without --cors, OPTIONS is Python's 501; a bad -H is refused at start.
    let plain = Server::start(&["-d", fx.root_str()]);
    assert_eq!(request(&plain, "OPTIONS /a.txt HTTP/1.1").status, Some(501));
    assert!(
        get_with(&plain, "/a.txt", &[])
            .header("Access-Control-Allow-Origin")
            .is_none()
    );
    let out = std::process::Command::new(support::tinyserve_bin())
        .args(["-H", "no colon here", "0"])
        .output()
        .unwrap();
    // A mistake in the arguments: exit 2, as argparse's.
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn precompressed_twins_for_clients_that_accept_them() {
    let fx = fixture_tree();
    fs::write(fx.path("app.js"), b"console.log('plain')").unwrap();
    fs::write(fx.path("app.js.gz"), b"GZIP-BYTES").unwrap();
    fs::write(fx.path("app.js.br"), b"BROTLI-BYTES").unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let r = get_with(&server, "/app.js", &[]);
    assert_eq!(r.body, b"console.log('plain')");
    assert!(r.header("Content-Encoding").is_none());
    let r = get_with(&server, "/app.js", &["Accept-Encoding: gzip, deflate"]);
    assert_eq!(r.body, b"GZIP-BYTES");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("Content-type"), Some("text/javascript"));
    let r = get_with(&server, "/app.js", &["Accept-Encoding: gzip, br"]);
    assert_eq!(r.body, b"BROTLI-BYTES");
    let r = get_with(&server, "/app.js", &["Accept-Encoding: br;q=0, gzip;q=0"]);
    assert_eq!(r.body, b"console.log('plain')");
}

#[test]
fn rich_listing_is_behind_its_flag() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str(), "--rich-listing"]);
    let r = get_with(&server, "/list/?sort=size&order=desc", &[]);
    let html = r.text();
    assert_eq!(r.status, Some(200));
    assert!(html.contains("color-scheme:light dark"));
    assert!(html.contains("<li><a href=\"../\">../</a>"));
    assert!(html.contains("<li><a href=\"a%26b.txt\">a&amp;b.txt</a>"));
    assert!(html.contains(" B") || html.contains("KiB"));
    let plain = Server::start(&["-d", fx.root_str()]);
    assert!(
        !get_with(&plain, "/list/", &[])
            .text()
            .contains("color-scheme")
    );
}

#[test]
fn contain_symlinks_refuses_links_out_of_the_root() {
    let fx = fixture_tree();
    let outside = fx
        .root
        .parent()
        .unwrap()
        .join(format!("ts-outside-{}", std::process::id()));
    fs::write(&outside, b"OUTSIDE").unwrap();
    std::os::unix::fs::symlink(&outside, fx.path("escape.txt")).unwrap();
    let followed = Server::start(&["-d", fx.root_str()]);
    assert_eq!(get_with(&followed, "/escape.txt", &[]).body, b"OUTSIDE");
    let contained = Server::start(&["-d", fx.root_str(), "--contain-symlinks"]);
    assert_eq!(get_with(&contained, "/escape.txt", &[]).status, Some(404));
    // Links that stay inside still work.
    assert_eq!(
        get_with(&contained, "/list/link.txt", &[]).status,
        Some(200)
    );
    let _ = fs::remove_file(outside);
}

#[test]
fn quiet_logs_nothing() {
    let fx = fixture_tree();
    let server = Server::start(&["-d", fx.root_str(), "-q"]);
    assert_eq!(get_with(&server, "/a.txt", &[]).status, Some(200));
    assert_eq!(get_with(&server, "/missing", &[]).status, Some(404));
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.log_lines().is_empty(), "{:?}", server.log_lines());
}

#[test]
fn the_cache_sees_edits_replacements_and_deletions_at_once() {
    let fx = fixture_tree();
    let path = fx.path("live.txt");
    fs::write(&path, b"version 1").unwrap();
    let server = Server::start(&["-d", fx.root_str()]);
    let mut conn = Conn::connect(server.addr()).unwrap();
    let fetch = |conn: &mut Conn| {
        conn.send(b"GET /live.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        conn.read_response(false).unwrap()
    };
    for round in 0..20 {
        // Edited in place, same size.
        fs::write(&path, format!("version {}", round % 10)).unwrap();
        assert_eq!(
            fetch(&mut conn).body,
            format!("version {}", round % 10).into_bytes()
        );
        // Replaced by a rename.
        let tmp = fx.path("live.tmp");
        fs::write(&tmp, format!("renamed {round}")).unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert_eq!(
            fetch(&mut conn).body,
            format!("renamed {round}").into_bytes()
        );
    }
    fs::remove_file(&path).unwrap();
    assert_eq!(fetch(&mut conn).status, Some(404));
    // A renamed parent directory takes its cached files with it.
    fs::create_dir(fx.path("d1")).unwrap();
    fs::write(fx.path("d1/f.txt"), b"in d1").unwrap();
    let r = get_with(&server, "/d1/f.txt", &[]);
    assert_eq!(r.body, b"in d1");
    fs::rename(fx.path("d1"), fx.path("d2")).unwrap();
    assert_eq!(get_with(&server, "/d1/f.txt", &[]).status, Some(404));
    assert_eq!(get_with(&server, "/d2/f.txt", &[]).body, b"in d1");
}
