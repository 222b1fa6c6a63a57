//! Path traversal: hundreds of hostile request targets sent over real
//! sockets to the real binary, which serves a directory whose parent holds
//! secrets. No answer may carry a secret, list the parent, run a script
//! from outside, or redirect off the server, and the server must still be
//! answering afterwards. The same corpus goes through `urlpath::translate`
//! directly.
//!
//! Layout (no symlinks anywhere, so only the path logic keeps us inside):
//!
//! ```text
//! BASE/
//!   secret.txt            SECRET marker
//!   evil.sh               CGI script printing the marker (executable)
//!   secretdir/inner.txt   marker
//!   secretdir/evil.sh     CGI script printing the marker
//!   root2/secret.txt      marker (a sibling whose name starts with "root")
//!   root/                 served
//!     public.txt          PUBLIC
//!     secret.txt          a harmless twin of BASE/secret.txt
//!     sub/page.txt  sub/deeper/deep.txt
//!     cgi-bin/ok.sh       CGI script printing CGI-OK
//! ```

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use support::*;
use tinyserve::proto::urlpath;

const PUBLIC: &[u8] = b"PUBLIC-CONTENT\n";
const TWIN: &[u8] = b"INSIDE-TWIN-OF-SECRET\n";
const PAGE: &[u8] = b"SUB-PAGE\n";
const DEEP: &[u8] = b"DEEP-PAGE\n";
const CGI_OK: &[u8] = b"CGI-OK\n";

struct Tree {
    base: PathBuf,
    root: PathBuf,
    marker: String,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn write(path: &Path, contents: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn script(body: &str) -> Vec<u8> {
    format!("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf '%s\\n' '{body}'\n")
        .into_bytes()
}

fn tree() -> Tree {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = std::env::temp_dir().join(format!(
        "tinyserve-traversal-{}-{nanos}",
        std::process::id()
    ));
    let marker = format!("TOPSECRET-{}-{nanos}", std::process::id());
    let root = base.join("root");
    let secret = format!("{marker}\n").into_bytes();
    write(&base.join("secret.txt"), &secret, 0o644);
    write(&base.join("evil.sh"), &script(&marker), 0o755);
    write(&base.join("secretdir/inner.txt"), &secret, 0o644);
    write(&base.join("secretdir/evil.sh"), &script(&marker), 0o755);
    write(&base.join("root2/secret.txt"), &secret, 0o644);
    write(&root.join("public.txt"), PUBLIC, 0o644);
    write(&root.join("secret.txt"), TWIN, 0o644);
    write(&root.join("sub/page.txt"), PAGE, 0o644);
    write(&root.join("sub/deeper/deep.txt"), DEEP, 0o644);
    write(&root.join("cgi-bin/ok.sh"), &script("CGI-OK"), 0o755);
    for dir in [&base, &root] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    Tree { base, root, marker }
}

/// Hostile request targets. Each becomes `GET TARGET HTTP/1.1`.
fn hostile_targets() -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = Vec::new();
    let mut add = |s: &[u8]| t.push(s.to_vec());

    // `..` in every position.
    for s in [
        "/..",
        "/../",
        "/../secret.txt",
        "/../../secret.txt",
        "/../../../../../../secret.txt",
        "/../secretdir/inner.txt",
        "/../root2/secret.txt",
        "/../root/../secret.txt",
        "/sub/../../secret.txt",
        "/sub/deeper/../../../secret.txt",
        "/sub/..",
        "/sub/../..",
        "/sub/../../",
        "/sub/page.txt/../../secret.txt",
        "/sub/page.txt/..",
        "/..//secret.txt",
        "/./../secret.txt",
        "/.././../secret.txt",
        "..",
        "../secret.txt",
        "../../secret.txt",
        "/sub/./.././../secret.txt",
        "/../sub/page.txt",
        "/sub/../public.txt",
        "/a/b/c/../../../../secretdir/inner.txt",
        "/../secretdir/",
        "/../secretdir",
        "/../root2/",
        "/../root2",
        "/../../../../etc/passwd",
    ] {
        add(s.as_bytes());
    }
    // Percent-encoded, mixed case, double-encoded, partly encoded.
    for s in [
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2E/%2E%2e/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2e%2e%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecretdir%2Finner.txt",
        "/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%252fsecret.txt",
        "/%25%32%65%25%32%65/secret.txt",
        "/%%32%65%%32%65/secret.txt",
        "/%2%65%2%65/secret.txt",
        "/%u002e%u002e/secret.txt",
        "/%u002e%u002e%u2215secret.txt",
        "/%uff0e%uff0e/secret.txt",
        "/%ef%bc%8e%ef%bc%8e/secret.txt",
        "/%e2%80%a4%e2%80%a4/secret.txt",
        "/%2e%2e%00/secret.txt",
        "/%2e%2e%5csecret.txt",
        "/%2e%2e%5c%2e%2e%5csecret.txt",
    ] {
        add(s.as_bytes());
    }
    // Overlong UTF-8 and surrogate forms of `.` and `/`.
    for s in [
        "/%c0%ae%c0%ae/secret.txt",
        "/%C0%AE%C0%AE/secret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/%f0%80%80%ae%f0%80%80%ae/secret.txt",
        "/..%c0%afsecret.txt",
        "/..%c0%2fsecret.txt",
        "/..%e0%80%afsecret.txt",
        "/..%c1%9csecret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%ED%B2%AE%ED%B2%AE/secret.txt",
        "/%ED%A0%80/../secret.txt",
    ] {
        add(s.as_bytes());
    }
    // Backslashes, raw and encoded.
    for s in [
        "/..\\secret.txt",
        "/..\\..\\secret.txt",
        "\\..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/..%5csecret.txt",
        "/..%5C..%5Csecret.txt",
        "/sub\\..\\..\\secret.txt",
        "/C:\\secret.txt",
        "/C:/secret.txt",
        "/\\\\host\\share\\secret.txt",
    ] {
        add(s.as_bytes());
    }
    // NUL, raw and encoded, and other control bytes.
    add(b"/..%00/secret.txt");
    add(b"/secret.txt%00.html");
    add(b"/%00../secret.txt");
    add(b"/..\x00/secret.txt");
    add(b"/../secret.txt\x00");
    add(b"/..%0d%0a/secret.txt");
    add(b"/..%09/secret.txt");
    add(b"/\xff/../../secret.txt");
    add(b"/\xc0\xae\xc0\xae/secret.txt");
    // Absolute paths and URLs.
    for s in [
        "/etc/passwd",
        "//etc/passwd",
        "///etc/passwd",
        "////../etc/passwd",
        "etc/passwd",
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "http://host/../secret.txt",
        "http://localhost/../../secret.txt",
        "http://127.0.0.1/../../etc/passwd",
        "https://x/%2e%2e/secret.txt",
        "//evil.example/..",
        "//evil.example/%2e%2e/",
        "///evil.example/../",
        "http://evil.example/../..",
        "https://evil.example/%2e%2e/%2e%2e",
        "//evil.example/../..",
        "x:/../..",
        "/\\evil.example/..",
        "*",
        "/proc/self/environ",
        "/proc/self/cwd/../secret.txt",
        "/dev/zero",
        "/dev/urandom",
        "/tmp",
    ] {
        add(s.as_bytes());
    }
    // `;` parameters, query and fragment tricks.
    for s in [
        "/..;/secret.txt",
        "/..;/..;/secret.txt",
        "/;/../secret.txt",
        "/sub;x=1/../../secret.txt",
        "/..;x/secret.txt",
        "/secret.txt;.html",
        "/?/../../secret.txt",
        "/#/../../secret.txt",
        "/%3f/../../secret.txt",
        "/%23/../../secret.txt",
        "/public.txt?../../secret.txt",
        "/public.txt#../../secret.txt",
    ] {
        add(s.as_bytes());
    }
    // Repeated slashes, `/./`, and dots that are not `..`.
    for s in [
        "/////../../secret.txt",
        "/./././../secret.txt",
        "/sub//..//..//secret.txt",
        "/.../secret.txt",
        "/..../secret.txt",
        "/. ./secret.txt",
        "/..%20/secret.txt",
        "/%20../secret.txt",
        "/secret.txt.",
        "/secret.txt..",
        "/secretdir.",
        "/../secret.txt.",
        "/../secret.txt/",
        "/../secret.txt/.",
        "/public.txt/",
        "/public.txt/.",
        "/public.txt/..",
        "/sub/page.txt/",
        "/.",
        "/./",
        "/.hidden/../../secret.txt",
    ] {
        add(s.as_bytes());
    }
    // CGI directories (the second server runs with --cgi).
    for s in [
        "/cgi-bin/../../secret.txt",
        "/cgi-bin/../../evil.sh",
        "/cgi-bin/..%2f..%2fevil.sh",
        "/cgi-bin/%2e%2e/%2e%2e/evil.sh",
        "/cgi-bin/../../secretdir/evil.sh",
        "/htbin/../../evil.sh",
        "/cgi-bin/ok.sh/../../../evil.sh",
        "/cgi-bin//../../evil.sh",
        "/cgi-bin/%2e%2e%2f%2e%2e%2fevil.sh",
        "/cgi-bin/..%5c..%5cevil.sh",
        "/%2e%2e/cgi-bin/../evil.sh",
        "/cgi-bin/ok.sh?../../evil.sh",
        "/cgi-bin/ok.sh/../../secret.txt",
        "/cgi-bin/../cgi-bin/../../evil.sh",
        "/cgi-bin/%2e%2e/secretdir/evil.sh",
        "/%63gi-bin/../../evil.sh",
        "/cgi-bin/ok.sh/..%2f..%2f..%2fsecret.txt",
        "/cgi-bin/..;/..;/evil.sh",
        "/cgi-bin/%252e%252e/%252e%252e/evil.sh",
        "/cgi-bin/.%2e/.%2e/evil.sh",
    ] {
        add(s.as_bytes());
    }

    // Every spelling of `..` with every separator, climbing to each secret.
    let dots = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "%252e%252e",
        "%c0%ae%c0%ae",
        "%e0%80%ae%e0%80%ae",
        "%u002e%u002e",
        "..;",
        "...",
        "..%00",
    ];
    let seps = ["/", "%2f", "%2F", "\\", "%5c", "%252f", "//", "/./"];
    for dot in dots {
        for sep in seps {
            for dest in ["secretdir/inner.txt", "root2/secret.txt"] {
                let mut s = String::from("/sub/");
                for _ in 0..3 {
                    s.push_str(dot);
                    s.push_str(sep);
                }
                s.push_str(dest);
                t.push(s.into_bytes());
            }
        }
    }

    // Very long targets: just under the 64 KiB line limit, and over it.
    let long = |piece: &str, n: usize, tail: &str| {
        let mut s = String::from("/");
        for _ in 0..n {
            s.push_str(piece);
        }
        s.push_str(tail);
        s.into_bytes()
    };
    t.push(long("../", 20_000, "secret.txt")); // 60 KB
    t.push(long("../", 22_000, "secret.txt")); // 66 KB: 414
    t.push(long("%2e%2e/", 9_000, "secret.txt"));
    t.push(long(
        "a/",
        8_000,
        &format!("{}secret.txt", "../".repeat(8_001)),
    ));
    t.push(long("/", 60_000, "../secret.txt"));
    t.push(long("./", 30_000, "../secret.txt"));
    t
}

/// The whole request for a target, with a few method and version variants.
fn requests(targets: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let (method, version) = match i % 10 {
            7 => ("HEAD", " HTTP/1.1"),
            8 => ("GET", " HTTP/1.0"),
            9 => ("POST", " HTTP/1.1"),
            _ => ("GET", " HTTP/1.1"),
        };
        let mut r = format!("{method} ").into_bytes();
        r.extend_from_slice(target);
        r.extend_from_slice(version.as_bytes());
        r.extend_from_slice(b"\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        out.push((target.clone(), r));
    }
    // HTTP/0.9 (body-only answers) for a few.
    for target in targets.iter().take(20) {
        let mut r = b"GET ".to_vec();
        r.extend_from_slice(target);
        r.extend_from_slice(b"\r\n");
        out.push((target.clone(), r));
    }
    out
}

/// A secret from the machine itself: the first line of /etc/passwd.
fn passwd_marker() -> Option<Vec<u8>> {
    let text = fs::read("/etc/passwd").ok()?;
    let line = text.split(|&b| b == b'\n').next()?;
    (line.len() >= 8).then(|| line.to_vec())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// What a listing of BASE (the served directory's parent) would contain.
const PARENT_LISTING_TELLS: &[&[u8]] = &[
    b"href=\"secretdir/\"",
    b"href=\"root2/\"",
    b"href=\"root/\"",
    b"href=\"evil.sh\"",
];

/// Sends every request; returns how many got a 200.
fn run_corpus(server: &mut Server, tree: &Tree, cgi: bool) -> usize {
    let marker = tree.marker.as_bytes();
    let passwd = passwd_marker();
    let targets = hostile_targets();
    assert!(targets.len() >= 100, "corpus has {} targets", targets.len());
    eprintln!("{} hostile targets", targets.len());
    let mut ok = 0;
    for (target, req) in requests(&targets) {
        let label = escape_bytes(&req, 200);
        let bytes = raw_request(server.addr(), &req);
        assert!(
            !contains(&bytes, marker),
            "secret served for {label}:\n{}",
            escape_bytes(&bytes, 2000)
        );
        if let Some(p) = &passwd {
            assert!(!contains(&bytes, p), "/etc/passwd served for {label}");
        }
        for tell in PARENT_LISTING_TELLS {
            assert!(
                !contains(&bytes, tell),
                "the parent directory was listed for {label}:\n{}",
                escape_bytes(&bytes, 2000)
            );
        }
        assert!(
            server.try_exit_status().is_none(),
            "the server died on {label}"
        );
        let head = req.starts_with(b"HEAD ");
        let Some(resp) = Response::parse_stream(&bytes, head)
            .ok()
            .and_then(|all| all.into_iter().next())
        else {
            continue; // no answer at all (closed): the bytes were checked above
        };
        if let Some(location) = resp.header("Location") {
            check_location(&target, location, &label);
        }
        if resp.status == Some(200) {
            ok += 1;
            let body = &resp.body[..];
            let listing = contains(body, b"Directory listing for");
            // Without --cgi a script inside the root is an ordinary file.
            let ok_source = script("CGI-OK");
            let known = [PUBLIC, TWIN, PAGE, DEEP, CGI_OK, &ok_source].contains(&body);
            assert!(
                (head && body.is_empty()) || known || listing,
                "200 with an unexpected body for {label}:\n{}",
                escape_bytes(body, 500)
            );
            if body == CGI_OK {
                assert!(cgi, "a script ran without --cgi for {label}");
            }
        }
    }
    ok
}

/// A redirect never leads off this server, and never anywhere the client
/// did not name itself.
///
/// The Location is a path on this host: it starts with exactly one `/`,
/// holds no raw `\` (browsers read it as `/`), and an absolute-form target
/// (`GET http://evil.example/../..`) keeps only its path. (Python 3.13
/// echoes both of those as they came, an open redirect; tinyserve does not.)
/// For an ordinary origin-form target without a backslash, the Location is
/// the target's path (leading slashes collapsed) with a `/` added.
fn check_location(target: &[u8], location: &str, label: &str) {
    assert!(
        location.starts_with('/') && !location.starts_with("//"),
        "redirect off the server for {label}: {location}"
    );
    assert!(
        !location.contains('\\'),
        "raw backslash in Location for {label}: {location}"
    );
    let slashes = target.iter().take_while(|&&b| b == b'/').count();
    let sent = &target[slashes.saturating_sub(1)..];
    let path = urlpath::split_target(sent).path;
    if sent.starts_with(b"/") && !path.contains(&b'\\') {
        assert!(
            location.as_bytes().starts_with(path),
            "redirect to something other than the target for {label}: {location}"
        );
    }
}

fn get(server: &Server, target: &str) -> Response {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    // No half-close: to tinyserve a client's EOF means it has left, and a
    // CGI script whose client has left is stopped.
    let bytes = raw_request_answered(server.addr(), req.as_bytes(), IO_TIMEOUT).bytes;
    Response::parse(&bytes)
        .unwrap_or_else(|e| panic!("GET {target}: {e}: {}", escape_bytes(&bytes, 500)))
}

fn assert_still_serving(server: &mut Server, cgi: bool) {
    assert!(server.try_exit_status().is_none(), "server exited");
    let r = get(server, "/public.txt");
    assert_eq!((r.status, &r.body[..]), (Some(200), PUBLIC));
    let r = get(server, "/sub/deeper/deep.txt");
    assert_eq!((r.status, &r.body[..]), (Some(200), DEEP));
    let r = get(server, "/sub/");
    assert_eq!(r.status, Some(200));
    assert!(r.text().contains("page.txt"));
    if cgi {
        let r = get(server, "/cgi-bin/ok.sh");
        assert_eq!(
            (r.status, &r.body[..]),
            (Some(200), CGI_OK),
            "{}",
            r.summary(300)
        );
    }
}

#[test]
fn hostile_paths_over_sockets_stay_inside_the_root() {
    let tree = tree();
    let started = Instant::now();
    let mut server = Server::start(&["-q", "-d", tree.root.to_str().unwrap()]);
    assert_still_serving(&mut server, false);
    let ok = run_corpus(&mut server, &tree, false);
    assert!(
        ok > 0,
        "no request got a 200: the positive controls are broken"
    );
    assert_still_serving(&mut server, false);
    eprintln!("static: {ok} answers were 200, {:?}", started.elapsed());
}

#[test]
fn hostile_paths_with_cgi_run_no_outside_script() {
    let tree = tree();
    let started = Instant::now();
    let mut server = Server::start(&["-q", "--cgi", "-d", tree.root.to_str().unwrap()]);
    assert_still_serving(&mut server, true);
    let ok = run_corpus(&mut server, &tree, true);
    assert!(ok > 0);
    assert_still_serving(&mut server, true);
    eprintln!("cgi: {ok} answers were 200, {:?}", started.elapsed());
}

#[test]
fn hostile_paths_translate_inside_the_root() {
    let tree = tree();
    let root = fs::canonicalize(&tree.root).unwrap();
    let secrets = [
        tree.base.join("secret.txt"),
        tree.base.join("evil.sh"),
        tree.base.join("secretdir/inner.txt"),
        tree.base.join("root2/secret.txt"),
    ]
    .map(|p| fs::canonicalize(p).unwrap());
    let mut rel = Vec::new();
    for target in hostile_targets() {
        let label = escape_bytes(&target, 200);
        let t = urlpath::translate(&target, &mut rel);
        assert!(!rel.starts_with(b"/"), "{label}: absolute");
        if !rel.is_empty() {
            for seg in rel.split(|&b| b == b'/') {
                assert!(
                    !seg.is_empty() && seg != b"." && seg != b"..",
                    "{label}: segment {:?} in {}",
                    escape_bytes(seg, 50),
                    escape_bytes(&rel, 200)
                );
            }
        }
        assert_eq!(t.has_nul, rel.contains(&0));
        let path = tree.root.join(OsStr::from_bytes(&rel));
        if !t.has_nul
            && let Ok(real) = fs::canonicalize(&path)
        {
            assert!(
                real.starts_with(&root),
                "{label} reaches {}",
                real.display()
            );
            assert!(!secrets.contains(&real), "{label} reaches a secret");
        }
        // Lexically, too (the file need not exist).
        let mut depth: isize = 0;
        for seg in rel.split(|&b| b == b'/') {
            depth += match seg {
                b"" | b"." => 0,
                b".." => -1,
                _ => 1,
            };
            assert!(depth >= 0, "{label} climbs out lexically");
        }
    }
}

/// The oracle itself: served from BASE, the secrets and the parent's
/// listing are there to see, so the checks above would catch a leak.
#[test]
fn the_secret_detectors_see_a_leak() {
    let tree = tree();
    let server = Server::start(&["-q", "--cgi", "-d", tree.base.to_str().unwrap()]);
    let marker = tree.marker.as_bytes();
    let r = get(&server, "/secret.txt");
    assert!(contains(&r.body, marker), "{}", r.summary(300));
    let r = get(&server, "/secretdir/inner.txt");
    assert!(contains(&r.body, marker));
    let r = get(&server, "/");
    for tell in PARENT_LISTING_TELLS {
        assert!(contains(&r.body, tell), "{}", escape_bytes(tell, 50));
    }
    // The outside scripts do print the marker when they are run.
    let dir = tree.base.join("cgi-bin");
    fs::create_dir(&dir).unwrap();
    fs::copy(tree.base.join("evil.sh"), dir.join("evil.sh")).unwrap();
    let r = get(&server, "/cgi-bin/evil.sh");
    assert!(contains(&r.body, marker), "{}", r.summary(300));
}
