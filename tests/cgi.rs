//! CGI over real sockets, tinyserve only: what the script's header block
//! does (RFC 3875 6.2), framing and keep-alive around scripts, streaming of
//! large bodies in bounded memory, concurrency next to static files, and the
//! life of the child processes (client gone, timeout, reaping, stderr).
//!
//! Every test starts its own server on its own temp tree under /tmp (scripts
//! run as `nobody` when the tests run as root, so the tree is world-readable
//! and `run/` is world-writable for pid files) and ends by checking that the
//! server has no child process left. Waits poll with deadlines.
//!
//! Run: `cargo test --test cgi`

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Static file served next to the scripts.
const STATIC: &[u8] = b"static file contents\n";

/// A tree with the scripts every test uses.
fn fixture() -> TempTree {
    let t = TempTree::new("cgi");
    t.file("static.txt", STATIC);
    t.file("dir/inner.txt", b"inner\n");
    let run = t.dir("run");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run.to_str().unwrap().to_string();
    let sh = |name: &str, body: &str| {
        t.script(&format!("cgi-bin/{name}"), &format!("#!/bin/sh\n{body}"));
    };
    sh(
        "status.sh",
        "printf 'Status: 404 Not Here\\nX-Script: yes\\nContent-Type: text/plain\\n\\nnot here\\n'\n",
    );
    for code in [201, 202, 303, 401, 418, 503] {
        sh(
            &format!("status{code}.sh"),
            &format!("printf 'Status: {code}\\nContent-Type: text/plain\\n\\nstatus {code}\\n'\n"),
        );
    }
    sh(
        "status204.sh",
        "printf 'Status: 204 No Content\\nX-Script: yes\\n\\nthis body must not be sent\\n'\n",
    );
    sh(
        "location_abs.sh",
        "printf 'Location: http://example.com/elsewhere?a=1\\nContent-Type: text/plain\\n\\nmoved\\n'\n",
    );
    sh(
        "location_local.sh",
        "printf 'Location: /static.txt\\n\\nthe script body must not be sent\\n'\n",
    );
    sh(
        "location_local_missing.sh",
        "printf 'Location: /no/such/file.txt\\n\\n'\n",
    );
    sh(
        "chunked.sh",
        "printf 'Content-Type: text/plain\\nX-Script: chunked\\n\\n'\necho one\necho two\n",
    );
    sh(
        "length.sh",
        "printf 'Content-Type: text/plain\\nContent-Length: 6\\n\\nhello\\n'\n",
    );
    sh(
        "echo.sh",
        "printf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
    );
    sh(
        "stdin.sh",
        "printf 'Content-Type: text/plain\\n\\n'\nprintf 'method=%s length=[%s] stdin=[' \"$REQUEST_METHOD\" \"$CONTENT_LENGTH\"\ncat\nprintf ']\\n'\n",
    );
    sh(
        "sleep.sh",
        "sleep 0.2\nprintf 'Content-Type: text/plain\\n\\n'\necho \"done $QUERY_STRING\"\n",
    );
    // One process that ignores SIGPIPE and write errors: only a signal
    // from the server can stop it.
    t.script(
        "cgi-bin/forever.py",
        &format!(
            "#!/usr/bin/python3\n\
             import os, sys, time\n\
             with open('{run}/' + os.environ['QUERY_STRING'] + '.pid', 'w') as f:\n\
             \x20   f.write(str(os.getpid()))\n\
             sys.stdout.write('Content-Type: text/plain\\n\\n')\n\
             while True:\n\
             \x20   try:\n\
             \x20       sys.stdout.write('tick\\n')\n\
             \x20       sys.stdout.flush()\n\
             \x20   except OSError:\n\
             \x20       pass\n\
             \x20   time.sleep(0.1)\n"
        ),
    );
    // The signal state a script starts with (exec: dash restores the mask
    // it was started with; Python leaves the mask alone).
    sh(
        "mask.sh",
        "printf 'Content-Type: text/plain\\n\\n'\nexec grep -E '^Sig(Blk|Ign):' /proc/self/status\n",
    );
    t.script(
        "cgi-bin/mask.py",
        "#!/usr/bin/python3\n\
         print('Content-Type: text/plain')\n\
         print()\n\
         print(''.join(l for l in open('/proc/self/status') if l.startswith('SigBlk:')), end='')\n",
    );
    sh(
        "slow.sh",
        &format!("echo $$ > {run}/$QUERY_STRING.pid\nexec sleep 30\n"),
    );
    sh(
        "slow_after_head.sh",
        &format!(
            "echo $$ > {run}/$QUERY_STRING.pid\n\
             printf 'Content-Type: text/plain\\n\\nstarted\\n'\nexec sleep 30\n"
        ),
    );
    sh(
        "stderr.sh",
        "echo \"stderr-marker-$QUERY_STRING\" >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
    );
    t
}

fn server(t: &TempTree, proto: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--cgi"];
    args.extend_from_slice(extra);
    Server::tinyserve_with(&t.root, proto, &args)
}

/// Sends `req` on a fresh connection (no half-close) and reads one
/// response (to EOF when it has no length).
fn ask(s: &Server, req: &str) -> Response {
    request_one(s.addr(), req.as_bytes())
        .unwrap_or_else(|e| panic!("request {req:?} to {}: {e}", s.label))
}

/// The pid a script wrote to `run/NAME.pid`, waiting for it to appear.
fn script_pid(t: &TempTree, name: &str) -> u32 {
    let path = t.path(format!("run/{name}.pid"));
    let mut pid = None;
    let found = wait_until(Duration::from_secs(5), || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    assert!(found, "the script never wrote {}", path.display());
    pid.unwrap()
}

/// Asserts the script process `pid` disappears (and is reaped) in time.
fn assert_gone(s: &Server, pid: u32, within: Duration, what: &str) {
    let started = Instant::now();
    let gone = wait_until(within, || process_gone(pid, s.pid()));
    assert!(
        gone,
        "{what}: script pid {pid} still there after {within:?} (state {:?}, server pid {})",
        proc_stat(pid),
        s.pid()
    );
    eprintln!("{what}: pid {pid} gone after {:?}", started.elapsed());
}

/// Asserts the server has no child process left (waits a little for the
/// last ones to be reaped).
fn assert_no_children(s: &Server) {
    let mut left = Vec::new();
    let ok = wait_until(Duration::from_secs(5), || {
        left = child_pids(s.pid());
        left.is_empty()
    });
    let states: Vec<_> = left.iter().map(|&p| (p, proc_stat(p))).collect();
    assert!(ok, "{} still has child processes: {states:?}", s.label);
}

// ---------------------------------------------------------------------------
// The script's header block
// ---------------------------------------------------------------------------

#[test]
fn status_header_sets_the_status() {
    let t = fixture();
    for proto in ["HTTP/1.0", "HTTP/1.1"] {
        let s = server(&t, proto, &[]);
        let r = ask(&s, "GET /cgi-bin/status.sh HTTP/1.0\r\n\r\n");
        assert_eq!(
            r.status_line.as_deref(),
            Some(format!("{proto} 404 Not Here").as_str())
        );
        assert_eq!(r.header("X-Script"), Some("yes"));
        assert_eq!(r.header("Status"), None, "Status must not reach the client");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.body, b"not here\n");

        // 204: no body even though the script printed one; the connection
        // goes on (HTTP/1.1 mode).
        let mut c = Conn::connect(s.addr()).unwrap();
        c.send(b"GET /cgi-bin/status204.sh HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, Some(204), "{}", r.summary(200));
        assert_eq!(r.header("X-Script"), Some("yes"));
        assert!(r.body.is_empty());
        assert_eq!(r.header("Transfer-Encoding"), None);
        if proto == "HTTP/1.1" {
            c.send(b"GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let r = c.read_response(false).unwrap();
            assert_eq!(
                r.body,
                STATIC,
                "the request after a 204 script: {}",
                r.summary(200)
            );
        }
        assert_no_children(&s);
    }
}

/// `Status: NNN` without a reason phrase: the status line gets the
/// standard phrase (the README: "`Status:` sets the status").
#[test]
fn status_without_reason_gets_the_standard_phrase() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut wrong = Vec::new();
    for (code, phrase) in [
        (201, "Created"),
        (202, "Accepted"),
        (303, "See Other"),
        (401, "Unauthorized"),
        (418, "I'm a Teapot"),
        (503, "Service Unavailable"),
    ] {
        let r = ask(
            &s,
            &format!("GET /cgi-bin/status{code}.sh HTTP/1.0\r\n\r\n"),
        );
        assert_eq!(r.status, Some(code));
        assert_eq!(r.body, format!("status {code}\n").as_bytes());
        let want = format!("HTTP/1.1 {code} {phrase}");
        if r.status_line.as_deref() != Some(want.as_str()) {
            wrong.push(format!("want {want:?}, got {:?}", r.status_line));
        }
    }
    assert_no_children(&s);
    assert!(
        wrong.is_empty(),
        "BUG: a script's `Status: NNN` without a phrase gives an empty or wrong reason phrase \
         (src/status.rs has no entry for these codes): {wrong:#?}"
    );
}

#[test]
fn absolute_location_is_a_302() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let r = ask(&s, "GET /cgi-bin/location_abs.sh HTTP/1.0\r\n\r\n");
    assert_eq!(
        r.status_line.as_deref(),
        Some("HTTP/1.1 302 Found"),
        "{}",
        r.summary(200)
    );
    assert_eq!(
        r.header("Location"),
        Some("http://example.com/elsewhere?a=1")
    );
    assert_eq!(r.body, b"moved\n");
    assert_no_children(&s);
}

/// RFC 3875 6.2.2: a local `Location: /path` (and nothing else) asks the
/// server to serve that path in place of the script's answer.
#[test]
fn local_location_is_served_in_place_rfc3875_6_2_2() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let r = ask(&s, "GET /cgi-bin/location_local.sh HTTP/1.0\r\n\r\n");
    assert_eq!(
        r.status,
        Some(200),
        "BUG if this fails: local redirect not served in place: {}",
        r.summary(300)
    );
    assert_eq!(
        r.header("Location"),
        None,
        "the Location must not reach the client"
    );
    assert_eq!(
        r.body,
        STATIC,
        "want the contents of /static.txt: {}",
        r.summary(300)
    );
    assert_eq!(r.content_length(), Some(STATIC.len()));

    // HEAD: the same head, no body.
    let r = ask(&s, "HEAD /cgi-bin/location_local.sh HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, Some(200));
    assert_eq!(r.content_length(), Some(STATIC.len()));
    assert!(r.body.is_empty());

    // On a keep-alive connection, twice, then something else.
    let mut c = Conn::connect(s.addr()).unwrap();
    for _ in 0..2 {
        c.send(b"GET /cgi-bin/location_local.sh HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.body, STATIC, "{}", r.summary(200));
    }
    c.send(b"GET /cgi-bin/length.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().body, b"hello\n");

    // A local redirect to nothing is that path's 404.
    let r = ask(
        &s,
        "GET /cgi-bin/location_local_missing.sh HTTP/1.0\r\n\r\n",
    );
    assert_eq!(r.status, Some(404), "{}", r.summary(300));
    assert_no_children(&s);
}

// ---------------------------------------------------------------------------
// Framing and keep-alive
// ---------------------------------------------------------------------------

#[test]
fn keep_alive_survives_chunked_and_length_responses() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut c = Conn::connect(s.addr()).unwrap();
    let get = |c: &mut Conn, path: &str, head: bool| {
        let m = if head { "HEAD" } else { "GET" };
        c.send(format!("{m} {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        c.read_response(head)
            .unwrap_or_else(|e| panic!("{m} {path} on the kept connection: {e}"))
    };
    for _ in 0..2 {
        let r = get(&mut c, "/cgi-bin/chunked.sh", false);
        assert_eq!(
            r.status_line.as_deref(),
            Some("HTTP/1.1 200 Script output follows")
        );
        assert_eq!(
            r.header("Transfer-Encoding"),
            Some("chunked"),
            "{}",
            r.summary(200)
        );
        assert_eq!(r.header("Content-Length"), None);
        assert_eq!(r.header("Connection"), None);
        assert_eq!(r.header("X-Script"), Some("chunked"));
        assert_eq!(r.body, b"one\ntwo\n");
    }
    let r = get(&mut c, "/cgi-bin/length.sh", false);
    assert_eq!(r.header("Content-Length"), Some("6"));
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.body, b"hello\n");
    let r = get(&mut c, "/cgi-bin/chunked.sh", true);
    assert_eq!(r.status, Some(200));
    assert_eq!(
        r.header("Transfer-Encoding"),
        None,
        "HEAD: {}",
        r.summary(200)
    );
    let r = get(&mut c, "/static.txt", false);
    assert_eq!(r.body, STATIC);
    let r = get(&mut c, "/cgi-bin/length.sh", false);
    assert_eq!(r.body, b"hello\n");
    assert!(
        c.pending().is_empty(),
        "stray bytes: {}",
        escape_bytes(c.pending(), 200)
    );
    assert!(
        !c.closed_within(Duration::from_millis(200)).unwrap(),
        "the connection must stay open after CGI responses"
    );

    // Pipelined: three script requests in one write.
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(
        b"GET /cgi-bin/chunked.sh HTTP/1.1\r\n\r\nGET /cgi-bin/length.sh HTTP/1.1\r\n\r\n\
          GET /cgi-bin/chunked.sh?x HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(c.read_response(false).unwrap().body, b"one\ntwo\n");
    assert_eq!(c.read_response(false).unwrap().body, b"hello\n");
    assert_eq!(c.read_response(false).unwrap().body, b"one\ntwo\n");
    assert_no_children(&s);
}

#[test]
fn http10_client_gets_a_close_delimited_body() {
    let t = fixture();
    for proto in ["HTTP/1.0", "HTTP/1.1"] {
        let s = server(&t, proto, &[]);
        for extra in ["", "Connection: keep-alive\r\n"] {
            let mut c = Conn::connect(s.addr()).unwrap();
            c.send(format!("GET /cgi-bin/chunked.sh HTTP/1.0\r\n{extra}\r\n").as_bytes())
                .unwrap();
            // No length: read_response reads to EOF, so this only returns
            // (and without error) if the server closes.
            let r = c.read_response(false).unwrap();
            let what = format!("{proto} server, HTTP/1.0 client {extra:?}");
            assert_eq!(r.status, Some(200), "{what}");
            assert_eq!(
                r.header("Transfer-Encoding"),
                None,
                "{what}: {}",
                r.summary(200)
            );
            assert_eq!(r.header("Content-Length"), None, "{what}");
            assert_eq!(r.body, b"one\ntwo\n", "{what}");
            if proto == "HTTP/1.1" {
                assert_eq!(r.header("Connection"), Some("close"), "{what}");
            }
        }
        assert_no_children(&s);
    }
}

/// With the script's own Content-Length, an HTTP/1.0 client asking for
/// keep-alive keeps its connection in HTTP/1.1 mode, and (as for static
/// files, README "Deliberate differences") it must be told so: without
/// `Connection: keep-alive` an HTTP/1.0 client has to assume the server
/// closes.
#[test]
fn http10_keep_alive_client_is_told_keep_alive_after_a_script() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"GET /cgi-bin/length.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"hello\n");
    let announced = r.header("Connection").map(str::to_string);
    c.send(b"GET /static.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r2 = c.read_response(false).unwrap();
    assert_eq!(r2.body, STATIC, "the connection is kept");
    assert_eq!(
        r2.header("Connection"),
        Some("keep-alive"),
        "static files announce it"
    );
    assert_no_children(&s);
    assert_eq!(
        announced.as_deref(),
        Some("keep-alive"),
        "BUG: the connection was kept after the script's response but the HTTP/1.0 client \
         was not told (`Connection: keep-alive` missing): {}",
        r.summary(200)
    );
}

// ---------------------------------------------------------------------------
// Streaming: a 100 MB POST through `cat`
// ---------------------------------------------------------------------------

/// An incremental decoder for a chunked body.
enum Dechunk {
    Size(Vec<u8>),
    Data(usize),
    DataEnd(Vec<u8>),
    Trailer(Vec<u8>),
    Done,
}

impl Dechunk {
    /// Feeds bytes; decoded data goes to `out`. Returns how many bytes
    /// were left over after the end of the body.
    fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> usize {
        while !input.is_empty() {
            match self {
                Dechunk::Size(line) => {
                    line.push(input[0]);
                    input = &input[1..];
                    if line.ends_with(b"\r\n") {
                        let s = std::str::from_utf8(&line[..line.len() - 2]).unwrap();
                        let s = s.split(';').next().unwrap().trim();
                        let n = usize::from_str_radix(s, 16)
                            .unwrap_or_else(|e| panic!("bad chunk size {s:?}: {e}"));
                        *self = if n == 0 {
                            Dechunk::Trailer(Vec::new())
                        } else {
                            Dechunk::Data(n)
                        };
                    } else {
                        assert!(line.len() < 100, "chunk size line too long");
                    }
                }
                Dechunk::Data(left) => {
                    let take = (*left).min(input.len());
                    out(&input[..take]);
                    input = &input[take..];
                    *left -= take;
                    if *left == 0 {
                        *self = Dechunk::DataEnd(Vec::new());
                    }
                }
                Dechunk::DataEnd(crlf) => {
                    crlf.push(input[0]);
                    input = &input[1..];
                    if crlf.len() == 2 {
                        assert_eq!(crlf.as_slice(), b"\r\n", "chunk data not followed by CRLF");
                        *self = Dechunk::Size(Vec::new());
                    }
                }
                Dechunk::Trailer(line) => {
                    line.push(input[0]);
                    input = &input[1..];
                    if line.ends_with(b"\r\n") {
                        if line.len() == 2 {
                            *self = Dechunk::Done;
                        } else {
                            line.clear();
                        }
                    }
                }
                Dechunk::Done => return input.len(),
            }
        }
        0
    }
}

/// The uploaded body is this block repeated: pseudo-random bytes of a prime
/// length, so no buffer size lines up with it and a lost, repeated or
/// reordered piece anywhere shows.
fn upload_block() -> Vec<u8> {
    const LEN: usize = 1_048_573;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn post_100_mb_through_cat_streams_in_bounded_memory() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let block = std::sync::Arc::new(upload_block());
    let started = Instant::now();
    let stream = TcpStream::connect(s.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(25)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(25)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let wblock = block.clone();
    // The client writes on one thread while this one reads: the echo comes
    // back while the upload is still going.
    let wthread = thread::spawn(move || {
        let head = format!(
            "POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {TOTAL}\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).unwrap();
        let mut sent = 0u64;
        while sent < TOTAL {
            let at = (sent % wblock.len() as u64) as usize;
            let n = (wblock.len() - at)
                .min(256 * 1024)
                .min((TOTAL - sent) as usize);
            writer
                .write_all(&wblock[at..at + n])
                .unwrap_or_else(|e| panic!("upload failed after {sent} bytes: {e}"));
            sent += n as u64;
        }
        sent
    });

    // Read the response as it comes, de-chunking and comparing on the fly.
    let mut r = &stream;
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let mut got = 0u64;
    let mut first_bad: Option<u64> = None;
    let mut check = |mut data: &[u8]| {
        while !data.is_empty() {
            let at = (got % block.len() as u64) as usize;
            let n = (block.len() - at).min(data.len());
            if first_bad.is_none() && data[..n] != block[at..at + n] {
                let k = data[..n]
                    .iter()
                    .zip(&block[at..at + n])
                    .position(|(a, b)| a != b);
                first_bad = Some(got + k.unwrap_or(0) as u64);
            }
            got += n as u64;
            data = &data[n..];
        }
    };
    let mut dechunk = Dechunk::Size(Vec::new());
    let mut rss_kib = 0;
    let mut next_sample = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("reading the echo after {next_sample} bytes: {e}"));
        assert!(n > 0, "EOF before the end of the echo");
        let mut data = &buf[..n];
        if !head.ends_with(b"\r\n\r\n") {
            let mut k = 0;
            while k < data.len() && !head.ends_with(b"\r\n\r\n") {
                head.push(data[k]);
                k += 1;
            }
            data = &data[k..];
            if !head.ends_with(b"\r\n\r\n") {
                continue;
            }
            let (resp, _) = Response::parse_head(&head).unwrap();
            assert_eq!(resp.status, Some(200), "{}", resp.summary(0));
            assert!(
                resp.is_chunked(),
                "want a chunked echo: {}",
                resp.summary(0)
            );
        }
        assert_eq!(
            dechunk.feed(data, &mut check),
            0,
            "bytes after the chunked body"
        );
        next_sample += n as u64;
        if next_sample >= 8 << 20 {
            next_sample = 0;
            rss_kib = rss_kib.max(proc_status_kib(s.pid(), "VmRSS").unwrap_or(0));
        }
        if matches!(dechunk, Dechunk::Done) {
            break;
        }
    }
    let sent = wthread.join().unwrap();
    let elapsed = started.elapsed();
    let hwm_kib = proc_status_kib(s.pid(), "VmHWM").expect("VmHWM of the server");
    eprintln!(
        "100 MiB echoed in {elapsed:?} ({:.0} MiB/s); server VmHWM {hwm_kib} KiB, VmRSS sampled up to {rss_kib} KiB",
        100.0 / elapsed.as_secs_f64(),
    );
    assert_eq!(sent, TOTAL);
    assert_eq!(got, TOTAL, "echoed length");
    assert_eq!(
        first_bad, None,
        "the echo differs from the upload at this byte"
    );
    assert!(
        hwm_kib < 64 * 1024,
        "server peak memory {hwm_kib} KiB: the body must stream, not be buffered"
    );
    // The connection is still usable.
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"GET /static.txt HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().body, STATIC);
    drop(stream);
    assert_no_children(&s);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn fifty_concurrent_scripts_and_static_files_stay_prompt() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let addr = s.addr();
    let started = Instant::now();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let req = format!("GET /cgi-bin/sleep.sh?n={i} HTTP/1.0\r\n\r\n");
                let x = raw_request_opts(addr, req.as_bytes(), false, Duration::from_secs(15));
                (i, x)
            })
        })
        .collect();
    // Static requests while the scripts run.
    let mut slowest = Duration::ZERO;
    let mut statics = 0;
    thread::sleep(Duration::from_millis(20));
    while statics < 5 || workers.iter().any(|w| !w.is_finished()) {
        let t0 = Instant::now();
        let r = request_one(
            addr,
            b"GET /static.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .expect("static GET during the CGI load");
        let took = t0.elapsed();
        assert_eq!(r.body, STATIC);
        assert!(
            took < Duration::from_secs(1),
            "a static GET took {took:?} during the CGI load"
        );
        slowest = slowest.max(took);
        statics += 1;
        thread::sleep(Duration::from_millis(10));
    }
    for w in workers {
        let (i, x) = w.join().unwrap();
        assert!(x.end.is_ok(), "script request {i}: {:?}", x.end);
        let r = Response::parse(&x.bytes).unwrap_or_else(|e| panic!("script request {i}: {e}"));
        assert_eq!(
            r.status,
            Some(200),
            "script request {i}: {}",
            r.summary(200)
        );
        assert_eq!(r.text(), format!("done n={i}\n"), "script request {i}");
    }
    let all = started.elapsed();
    eprintln!(
        "50 scripts of 0.2 s in {all:?}; {statics} static GETs meanwhile, slowest {slowest:?}"
    );
    assert!(
        all < Duration::from_secs(6),
        "50 scripts sleeping 0.2 s took {all:?}: they do not run concurrently"
    );
    assert_no_children(&s);
}

// ---------------------------------------------------------------------------
// Child processes: client gone, timeout, stderr
// ---------------------------------------------------------------------------

#[test]
fn client_disconnect_kills_the_script() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    stream
        .write_all(b"GET /cgi-bin/forever.py?forever1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(4).filter(|w| w == b"tick").count() < 2 {
        let n = stream.read(&mut buf).expect("ticks from the script");
        assert!(n > 0, "EOF before two ticks");
        got.extend_from_slice(&buf[..n]);
    }
    let pid = script_pid(&t, "forever1");
    assert!(
        !process_gone(pid, s.pid()),
        "the script must still run while the client reads"
    );
    let _ = stream.shutdown(Shutdown::Both);
    drop(stream);
    assert_gone(&s, pid, Duration::from_secs(5), "client disconnect");
    assert_no_children(&s);
}

#[test]
fn cgi_timeout_stops_a_silent_script_with_504() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &["--cgi-timeout", "1"]);
    let started = Instant::now();
    let a = s.addr();
    let silent = thread::spawn(move || {
        raw_request_opts(
            a,
            b"GET /cgi-bin/slow.sh?slow1 HTTP/1.1\r\nHost: x\r\n\r\n",
            false,
            Duration::from_secs(8),
        )
    });
    let pid = script_pid(&t, "slow1");
    let x = silent.join().unwrap();
    let took = started.elapsed();
    let r = Response::parse(&x.bytes).unwrap_or_else(|e| panic!("504 expected: {e}"));
    assert_eq!(r.status, Some(504), "{}", r.summary(300));
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(parse_error_body(&r.body).map(|(c, _)| c), Some(504));
    assert!(
        x.end.is_ok(),
        "the connection must close after the 504: {:?}",
        x.end
    );
    assert!(
        took < Duration::from_secs(4),
        "504 after {took:?} with --cgi-timeout 1"
    );
    eprintln!("504 after {took:?}");
    assert_gone(&s, pid, Duration::from_secs(5), "timeout, silent script");
    assert!(
        s.wait_for_log(Duration::from_secs(2), |l| l.contains("\" 504 "))
            .is_some(),
        "the 504 is logged: {:?}",
        s.log_lines()
    );
    assert_no_children(&s);
}

/// A script stopped by the timeout after it sent its header: the response
/// is cut off, and the client must be able to tell (no last chunk, or for a
/// close-delimited body at least no clean end is possible: only chunked and
/// Content-Length bodies can show truncation).
#[test]
fn cgi_timeout_after_the_header_cuts_the_response_off() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &["--cgi-timeout", "1"]);
    let started = Instant::now();
    let mut c = Conn::connect(s.addr()).unwrap();
    c.timeout = Duration::from_secs(8);
    c.send(b"GET /cgi-bin/slow_after_head.sh?slow2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let pid = script_pid(&t, "slow2");
    let res = c.read_response(false);
    let took = started.elapsed();
    let closed = c.closed_within(Duration::from_secs(3)).unwrap();
    assert_gone(
        &s,
        pid,
        Duration::from_secs(5),
        "timeout, script after its header",
    );
    assert_no_children(&s);
    assert!(
        took < Duration::from_secs(5),
        "the script ran {took:?} with --cgi-timeout 1"
    );
    assert!(closed, "connection left open after the script was stopped");
    assert!(
        res.is_err(),
        "BUG: the script was killed by --cgi-timeout in the middle of its body, yet the \
         client got a complete-looking chunked response (terminated by the last chunk) \
         after {took:?}: {res:?}"
    );
}

/// The server blocks SIGINT, SIGTERM and SIGCHLD for its signalfd; a
/// script must not inherit that mask, or the SIGTERM that stops it (client
/// gone, timeout, shutdown) does nothing and only the SIGKILL 2 s later
/// does, and the script never sees SIGCHLD or SIGINT.
#[test]
fn scripts_start_with_an_empty_signal_mask() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut bad = Vec::new();
    for script in ["mask.sh", "mask.py"] {
        let r = ask(&s, &format!("GET /cgi-bin/{script} HTTP/1.0\r\n\r\n"));
        assert_eq!(r.status, Some(200), "{}", r.summary(300));
        let text = r.text();
        let blk = text
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("SigBlk hex"))
            .unwrap_or_else(|| panic!("{script}: no SigBlk line in {text:?}"));
        if blk != 0 {
            let names: Vec<&str> = [(2, "SIGINT"), (15, "SIGTERM"), (17, "SIGCHLD")]
                .iter()
                .filter(|(n, _)| blk & (1 << (n - 1)) != 0)
                .map(|(_, name)| *name)
                .collect();
            bad.push(format!("{script}: SigBlk {blk:#x} {names:?}"));
        }
    }
    assert_no_children(&s);
    assert!(
        bad.is_empty(),
        "BUG: CGI children inherit the server's blocked signal mask, so SIGTERM cannot stop \
         them (src/child.rs spawn: reset the mask in the child): {bad:?}"
    );
}

#[test]
fn script_stderr_reaches_the_server_stderr() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let r = ask(&s, "GET /cgi-bin/stderr.sh?abc123 HTTP/1.0\r\n\r\n");
    assert_eq!(r.body, b"ok\n");
    let line = s.wait_for_log(Duration::from_secs(3), |l| {
        l.contains("stderr-marker-abc123")
    });
    assert!(
        line.is_some(),
        "script stderr not in the server's stderr: {:?}",
        s.log_lines()
    );
    assert_no_children(&s);
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

#[test]
fn chunked_post_to_a_script_is_411() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let x = raw_request_opts(
        s.addr(),
        b"POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        false,
        Duration::from_secs(5),
    );
    let r = Response::parse(&x.bytes).unwrap();
    assert_eq!(r.status, Some(411), "{}", r.summary(300));
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(parse_error_body(&r.body).map(|(c, _)| c), Some(411));
    assert!(
        x.end.is_ok(),
        "the connection closes after the 411: {:?}",
        x.end
    );
    assert_no_children(&s);
}

#[test]
fn post_body_reaches_the_script_and_keep_alive_goes_on() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"POST /cgi-bin/stdin.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.text(), "method=POST length=[11] stdin=[hello world]\n");
    c.send(b"GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().body, STATIC);
    assert_no_children(&s);
}

#[test]
fn get_body_is_skipped_not_given_to_the_script() {
    let t = fixture();
    let s = server(&t, "HTTP/1.1", &[]);
    // One request at a time.
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"GET /cgi-bin/stdin.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, Some(200), "{}", r.summary(200));
    assert_eq!(
        r.text(),
        "method=GET length=[11] stdin=[]\n",
        "a GET body must not reach the script"
    );
    c.send(b"GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.body,
        STATIC,
        "the request after the skipped body: {}",
        r.summary(200)
    );

    // Pipelined with the body in the same write, and a body sent late.
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(
        b"GET /cgi-bin/stdin.sh HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET /cgi-bin/length.sh HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        c.read_response(false).unwrap().text(),
        "method=GET length=[5] stdin=[]\n"
    );
    assert_eq!(c.read_response(false).unwrap().body, b"hello\n");
    c.send(b"GET /cgi-bin/stdin.sh HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.text(), "method=GET length=[4] stdin=[]\n");
    c.send(b"wxyzGET /static.txt HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().body, STATIC);
    assert_no_children(&s);
}
