//! What goes beyond Python (symlink containment, pre-compressed twins,
//! ranges, validators, the rich listing, the file cache, the command
//! line), tried with the inputs an attacker or an odd file system gives.
//!
//! Run: `cargo test --test beyond_python_hostile`

mod support;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn ask(s: &Server, req: &str) -> Response {
    let raw = raw_request(s.addr(), req.as_bytes());
    Response::parse(&raw).unwrap_or_else(|e| panic!("{req:?}: {e}: {}", escape_bytes(&raw, 300)))
}

fn get(s: &Server, path: &str, headers: &[&str]) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    ask(s, &req)
}

fn gzip_of(text: &[u8]) -> Vec<u8> {
    // Any bytes do for a twin; these are what `gzip -c` of `text` starts with.
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    v.extend_from_slice(text);
    v.extend_from_slice(&[0; 8]);
    v
}

#[test]
fn contain_symlinks_covers_the_index_page_twins_and_directories() {
    let t = TempTree::new("contain");
    t.dir("sl");
    symlink("/etc/passwd", t.path("sl/index.html")).unwrap();
    t.file("page.html", b"<p>page</p>\n");
    symlink("/etc/passwd", t.path("page.html.gz")).unwrap();
    symlink("/etc", t.path("etc")).unwrap();
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["--contain-symlinks"]);
    for path in ["/sl/", "/sl/index.html", "/etc/", "/etc/passwd"] {
        let r = get(&s, path, &[]);
        assert_eq!(r.status, Some(404), "{path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{path}"
        );
    }
    let r = get(&s, "/page.html", &["Accept-Encoding: gzip"]);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.body, b"<p>page</p>\n");
}

#[test]
fn every_answer_from_a_file_with_a_twin_says_vary() {
    let t = TempTree::new("vary");
    t.file("app.js", b"console.log(1);\n");
    t.file("app.js.gz", &gzip_of(b"console.log(1);\n"));
    t.file("lone.js", b"x\n");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    // Twice each: the first answer opens the file, the second comes from
    // the cache.
    for _ in 0..2 {
        let identity = get(&s, "/app.js", &[]);
        assert_eq!(
            identity.header("Vary"),
            Some("Accept-Encoding"),
            "identity 200"
        );
        let etag = identity.header("ETag").unwrap().to_string();
        let r = get(&s, "/app.js", &[&format!("If-None-Match: {etag}")]);
        assert_eq!(r.status, Some(304));
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "identity 304");
        let gz = get(&s, "/app.js", &["Accept-Encoding: gzip"]);
        assert_eq!(gz.header("Content-Encoding"), Some("gzip"));
        let etag = gz.header("ETag").unwrap().to_string();
        let r = get(
            &s,
            "/app.js",
            &["Accept-Encoding: gzip", &format!("If-None-Match: {etag}")],
        );
        assert_eq!(r.status, Some(304));
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "twin 304");
        assert_eq!(get(&s, "/lone.js", &[]).header("Vary"), None);
    }
}

#[test]
fn multipart_ranges_of_a_twin_carry_its_encoding_and_a_fresh_boundary() {
    let t = TempTree::new("multipart");
    let text: Vec<u8> = (0..4000u32).map(|i| b'a' + (i % 26) as u8).collect();
    t.file("page.html", &text);
    t.file("page.html.gz", &gzip_of(&text));
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    let mut boundaries = Vec::new();
    for _ in 0..3 {
        let r = get(
            &s,
            "/page.html",
            &["Accept-Encoding: gzip", "Range: bytes=0-3,10-15"],
        );
        assert_eq!(r.status, Some(206));
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
        let ct = r.header("Content-Type").unwrap().to_string();
        let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
        assert!(boundary.len() >= 16);
        // The parts hold the twin's bytes.
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert!(body.contains("Content-Type: text/html"));
        assert_eq!(body.matches(&format!("--{boundary}")).count(), 3);
        boundaries.push(boundary);
    }
    boundaries.dedup();
    assert_eq!(boundaries.len(), 3, "the boundary repeats: {boundaries:?}");
}

#[test]
fn list_valued_conditionals_are_read_across_lines() {
    let t = TempTree::new("lists");
    t.file("f.txt", b"contents\n");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    let etag = get(&s, "/f.txt", &[]).header("ETag").unwrap().to_string();
    let r = get(
        &s,
        "/f.txt",
        &[
            "If-None-Match: \"other\"",
            &format!("If-None-Match: {etag}"),
        ],
    );
    assert_eq!(r.status, Some(304));
    let r = get(
        &s,
        "/f.txt",
        &["If-Match: \"other\"", &format!("If-Match: {etag}")],
    );
    assert_eq!(r.status, Some(200));
    let r = get(
        &s,
        "/f.txt",
        &["If-Match: \"other\"", "If-Match: \"another\""],
    );
    assert_eq!(r.status, Some(412));
}

#[test]
fn impossible_if_modified_since_dates_are_ignored_as_python_ignores_them() {
    let t = TempTree::new("ims");
    t.file("f.txt", b"contents\n");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &[]);
    for date in [
        "Tue, 31 Feb 2099 00:00:00 GMT",
        "31 Feb 2099 00:00:00 GMT",
        "Thu, 01 Jan 2099 00:00:61 GMT",
        "Thu, 01 Jan 2099 00:00:60 GMT",
        "Thu, 01 Jan 2099 25:00:00 GMT",
        "Thu, 01 Jan 123456789012345678 00:00:00 GMT",
        "Thu, 01 Jan 99999 00:00:00 GMT",
    ] {
        let r = get(&s, "/f.txt", &[&format!("If-Modified-Since: {date}")]);
        assert_eq!(r.status, Some(200), "{date}");
    }
    let r = get(
        &s,
        "/f.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
    );
    assert_eq!(r.status, Some(304));
}

/// A tree on tmpfs, which holds any time a 64-bit `time_t` can (ext4 stops
/// at 2446); removed on drop.
struct ShmTree(std::path::PathBuf);

impl ShmTree {
    fn new(tag: &str) -> ShmTree {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let p = std::path::PathBuf::from(format!("{base}/tinyserve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        ShmTree(p)
    }
}

impl Drop for ShmTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mtime(path: &std::path::Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat");
}

#[test]
fn a_file_dated_after_the_year_9999_is_served_and_listed() {
    let t = ShmTree::new("year10000");
    let far = t.0.join("far.txt");
    std::fs::write(&far, b"far future\n").unwrap();
    let year_10001 = 253_433_923_200;
    set_mtime(&far, year_10001);
    let huge = t.0.join("huge.txt");
    std::fs::write(&huge, b"huge\n").unwrap();
    set_mtime(&huge, i64::MAX / 2);
    for rich in [false, true] {
        let args: &[&str] = if rich { &["--rich-listing"] } else { &[] };
        let s = Server::tinyserve_with(&t.0, "HTTP/1.1", args);
        for path in ["/far.txt", "/huge.txt"] {
            for _ in 0..2 {
                let r = get(&s, path, &[]);
                assert_eq!(r.status, Some(200), "{path}");
                assert!(r.header("ETag").is_some());
                // Never later than now (RFC 9110 8.8.2.1).
                assert_eq!(r.header("Last-Modified"), r.header("Date"), "{path}");
            }
        }
        let r = get(&s, "/", &[]);
        assert_eq!(r.status, Some(200));
        if rich {
            assert!(String::from_utf8_lossy(&r.body).contains("9999-12-31"));
        }
    }
}

#[test]
fn a_refused_link_shows_no_size_or_time_in_the_rich_listing() {
    let t = TempTree::new("richlink");
    t.file("mine.txt", b"0123456789");
    symlink("/etc/passwd", t.path("outside")).unwrap();
    let s = Server::tinyserve_with(
        &t.root,
        "HTTP/1.1",
        &["--rich-listing", "--contain-symlinks"],
    );
    let html = String::from_utf8(get(&s, "/", &[]).body).unwrap();
    let line = html
        .lines()
        .find(|l| l.contains("href=\"outside\""))
        .expect("listed");
    let size = std::fs::metadata("/etc/passwd").unwrap().len();
    assert!(!line.contains(&format!("{size} B")), "{line}");
    assert!(!line.contains("UTC"), "{line}");
    let mine = html.lines().find(|l| l.contains("mine.txt")).unwrap();
    assert!(mine.contains("10 B"), "{mine}");
}

#[test]
fn without_trusted_inotify_a_cached_file_is_checked_once_a_second() {
    let t = TempTree::new("revalidate");
    t.file("f.txt", b"version one\n");
    let mut cmd = Command::new(tinyserve_bin());
    cmd.args(["-b", "127.0.0.1", "-d", t.root_str(), "0"])
        .env("TINYSERVE_CACHE_REVALIDATE", "1");
    let s = Server::spawn(cmd, "tinyserve (no inotify trusted)".into());
    assert_eq!(get(&s, "/f.txt", &[]).body, b"version one\n");
    assert_eq!(get(&s, "/f.txt", &[]).body, b"version one\n");
    // Same size, new bytes: only a stat can tell.
    std::fs::write(t.path("f.txt"), b"version two\n").unwrap();
    let started = Instant::now();
    loop {
        let body = get(&s, "/f.txt", &[]).body;
        if body == b"version two\n" {
            break;
        }
        assert_eq!(body, b"version one\n");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still the old file after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Replaced by another file of another size, and deleted.
    std::fs::write(t.path("f.txt.tmp"), b"three\n").unwrap();
    std::fs::rename(t.path("f.txt.tmp"), t.path("f.txt")).unwrap();
    assert!(wait_until(Duration::from_secs(3), || get(
        &s,
        "/f.txt",
        &[]
    )
    .body
        == b"three\n"));
    std::fs::remove_file(t.path("f.txt")).unwrap();
    assert!(wait_until(Duration::from_secs(3), || get(
        &s,
        "/f.txt",
        &[]
    )
    .status
        == Some(404)));
}

/// Runs tinyserve with `args`; it must exit with an error within 3 s.
/// Returns what it said on stderr.
fn start_fails(args: &[&str]) -> String {
    let mut child = Command::new(tinyserve_bin())
        .args(args)
        .args(["-b", "127.0.0.1", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(Duration::from_secs(3), || {
        child.try_wait().is_ok_and(|s| s.is_some())
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{args:?}: the server started");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?} exited with success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn absurd_timeouts_and_forged_headers_are_refused_at_start_up() {
    for flag in [
        "--idle-timeout",
        "--header-timeout",
        "--send-timeout",
        "--cgi-timeout",
    ] {
        for value in ["18446744073709551615", "9223372036854775808", "0"] {
            let err = start_fails(&[flag, value]);
            assert!(
                err.contains(flag) && err.contains("not in 1..=31536000"),
                "{flag} {value}: {err}"
            );
        }
    }
    let err = start_fails(&["-H", "X-Ctl: a\u{1}b"]);
    assert!(err.contains("control"), "{err}");
    for owned in [
        "Content-Length: 0",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "content-type: x",
        "Location: /x",
        "Accept-Ranges: none",
        "Vary: Cookie",
    ] {
        let err = start_fails(&["-H", owned]);
        assert!(err.contains("set by the server"), "{owned}: {err}");
    }
    let err = start_fails(&[
        "--cors",
        "-H",
        "Access-Control-Allow-Origin: https://a.example",
    ]);
    assert!(err.contains("--cors already sets it"), "{err}");
    let err = start_fails(&["-H", "X-A : b"]);
    assert!(err.contains("before the colon"), "{err}");
    // The longest accepted timeouts work.
    let t = TempTree::new("timeouts");
    t.file("f.txt", b"ok\n");
    let s = Server::tinyserve_with(
        &t.root,
        "HTTP/1.1",
        &[
            "--idle-timeout",
            "31536000",
            "--header-timeout",
            "31536000",
            "--send-timeout",
            "31536000",
        ],
    );
    assert_eq!(get(&s, "/f.txt", &[]).body, b"ok\n");
    assert_eq!(get(&s, "/f.txt", &[]).body, b"ok\n");
}
