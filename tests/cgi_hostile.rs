//! CGI tried as an attacker would: what runs (only scripts inside a CGI
//! directory, whatever the encoding), what a script's environment says,
//! what a script's output may put on the wire (no control bytes, no 1xx,
//! framing that matches what is sent), and how long a script lives (not
//! past its client, nor its children past it).
//!
//! Run: `cargo test --test cgi_hostile`

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::*;

/// A tree with a CGI directory, a `tools/` script outside it that would
/// leave a marker file if it ever ran, and `run/` for pid files.
fn tree() -> (TempTree, String) {
    let t = TempTree::new("cgi-hostile");
    let run = t.dir("run");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run.to_str().unwrap().to_string();
    for outside in ["tools/install.sh", "install.sh", "cgi-binx/install.sh"] {
        t.script(
            outside,
            &format!("#!/bin/sh\ntouch {run}/RAN\nprintf 'Content-Type: text/plain\\n\\nran\\n'\n"),
        );
    }
    t.script(
        "cgi-bin/env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv | sort\n",
    );
    t.script(
        "htbin/env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv | sort\n",
    );
    std::os::unix::fs::symlink("../tools/install.sh", t.path("cgi-bin/link.sh")).unwrap();
    (t, run)
}

fn server(t: &TempTree) -> Server {
    Server::tinyserve_with(&t.root, "HTTP/1.1", &["--cgi"])
}

fn get(s: &Server, target: &str, headers: &[&str]) -> Response {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    let raw = raw_request_answered(s.addr(), req.as_bytes(), Duration::from_secs(5));
    Response::parse(&raw.bytes)
        .unwrap_or_else(|e| panic!("GET {target}: {e}: {}", escape_bytes(&raw.bytes, 300)))
}

#[test]
fn encoded_dot_segments_never_run_a_file_outside_a_cgi_directory() {
    let (t, run) = tree();
    let s = server(&t);
    for target in [
        "/cgi-bin/%252e%252e/tools/install.sh",
        "/htbin/%252e%252e/tools/install.sh",
        "/cgi-bin/%25252e%25252e/tools/install.sh",
        "/cgi-bin/..%252ftools/install.sh",
        "/cgi-bin/%252e%252e%252ftools%252finstall.sh",
        "/cgi-bin/%2e%2e/tools/install.sh",
        "/cgi-bin/../tools/install.sh",
        "/cgi-bin/%252e%252e/install.sh",
        "/cgi-bin/..%5c..%5ctools%5cinstall.sh",
        "/cgi-bin/link.sh",
        "/cgi-binx/install.sh",
    ] {
        let r = get(&s, target, &[]);
        assert!(
            matches!(r.status, Some(403 | 404)) || r.body != b"ran\n",
            "{target}: {:?}",
            r.status_line
        );
        assert!(
            !std::path::Path::new(&format!("{run}/RAN")).exists(),
            "{target} ran a script outside the CGI directories"
        );
    }
    // The real scripts still run.
    assert_eq!(get(&s, "/cgi-bin/env.sh", &[]).status, Some(200));
    assert_eq!(get(&s, "/htbin/env.sh", &[]).status, Some(200));
}

#[test]
fn a_long_target_of_encoded_dots_does_not_stall_other_clients() {
    let (t, _) = tree();
    let s = server(&t);
    let target = format!("/cgi-bin/{}x.sh", "%252e/".repeat(10_900));
    assert!(target.len() > 65_000 && target.len() < 65_536);
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    // Twenty of them at once; before the walk was linear each took 0.6-0.9 s
    // of the loop, so a small request waited 10 s or more.
    let hogs: Vec<_> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    let r = get(&s, "/cgi-bin/env.sh", &[]);
    assert_eq!(r.status, Some(200));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a small request waited {:?}",
        started.elapsed()
    );
    for mut c in hogs {
        let mut buf = [0u8; 64];
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = c.read(&mut buf).unwrap_or(0);
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 404"),
            "{}",
            escape_bytes(&buf[..n], 64)
        );
    }
}

#[test]
fn headers_with_underscores_never_reach_scripts() {
    let (t, _) = tree();
    let s = server(&t);
    let r = get(
        &s,
        "/cgi-bin/env.sh",
        &[
            "X_Forwarded_For: 6.6.6.6",
            "X-Forwarded-For: 10.0.0.1",
            "Content_Type: evil",
            "Accept_Language: xx",
        ],
    );
    let env = String::from_utf8_lossy(&r.body);
    assert!(
        env.lines().any(|l| l == "HTTP_X_FORWARDED_FOR=10.0.0.1"),
        "{env}"
    );
    assert!(!env.contains("6.6.6.6"), "{env}");
    assert!(!env.contains("HTTP_CONTENT_TYPE"), "{env}");
    assert!(!env.contains("evil"), "{env}");
    assert!(!env.contains("HTTP_ACCEPT_LANGUAGE"), "{env}");
}

/// A server running scripts that print `output` (shell `printf` format).
fn script_server(scripts: &[(&str, &str)]) -> (TempTree, Server) {
    let t = TempTree::new("cgi-output");
    for (name, body) in scripts {
        t.script(&format!("cgi-bin/{name}"), &format!("#!/bin/sh\n{body}"));
    }
    let s = server(&t);
    (t, s)
}

#[test]
fn control_bytes_in_a_scripts_header_are_502_never_forwarded() {
    let (_t, s) = script_server(&[
        (
            "cr.sh",
            "printf 'X-A: one\\rSet-Cookie: crinj=1\\nContent-Type: text/plain\\n\\nbody'\n",
        ),
        ("nul.sh", "printf 'X-A: a\\000b\\n\\nbody'\n"),
        ("esc.sh", "printf 'X-A: \\033[31mred\\n\\nbody'\n"),
        (
            "status.sh",
            "printf 'Status: 200 OK\\001\\033[31mred\\n\\nbody'\n",
        ),
        ("name.sh", "printf 'X(A): b\\n\\nbody'\n"),
        (
            "tab.sh",
            "printf 'X-Tab: a\\tb\\nContent-Type: text/plain\\n\\nbody'\n",
        ),
    ]);
    for name in ["cr.sh", "nul.sh", "esc.sh", "status.sh", "name.sh"] {
        let r = get(&s, &format!("/cgi-bin/{name}"), &[]);
        assert_eq!(r.status, Some(502), "{name}: {:?}", r.status_line);
        assert!(r.header("Set-Cookie").is_none());
        assert!(r.header("X-A").is_none());
        assert!(!r.status_line.unwrap().contains('\u{1b}'));
    }
    let r = get(&s, "/cgi-bin/tab.sh", &[]);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.header("X-Tab"), Some("a\tb"));
}

#[test]
fn an_interim_status_from_a_script_is_502() {
    let (_t, s) = script_server(&[
        ("s100.sh", "printf 'Status: 100 Continue\\n\\n'\n"),
        (
            "s101.sh",
            "printf 'Status: 101 Switching Protocols\\nUpgrade: websocket\\nConnection: Upgrade\\n\\n'\n",
        ),
    ]);
    for name in ["s100.sh", "s101.sh"] {
        let mut c = Conn::connect(s.addr()).unwrap();
        c.send(
            format!(
                "GET /cgi-bin/{name} HTTP/1.1\r\nHost: x\r\n\r\nGET /cgi-bin/{name} HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, Some(502), "{name}");
        assert!(r.header("Upgrade").is_none());
        assert!(c.closed_within(Duration::from_secs(3)).unwrap());
    }
}

#[test]
fn bodyless_statuses_are_framed_so_the_next_response_is_read_whole() {
    let (_t, s) = script_server(&[
        (
            "s205.sh",
            "printf 'Status: 205\\nContent-Length: 4\\n\\nabcd'\n",
        ),
        ("s205bare.sh", "printf 'Status: 205 Reset Content\\n\\n'\n"),
        (
            "s204.sh",
            "printf 'Status: 204\\nContent-Length: 5\\n\\nhello'\n",
        ),
        (
            "s304.sh",
            "printf 'Status: 304\\nContent-Length: 5\\n\\nhello'\n",
        ),
        (
            "ok.sh",
            "printf 'Content-Type: text/plain\\nContent-Length: 3\\n\\nok\\n'\n",
        ),
    ]);
    for (name, length) in [
        ("s205.sh", Some("0")),
        ("s205bare.sh", Some("0")),
        ("s204.sh", None),
        ("s304.sh", None),
    ] {
        let mut c = Conn::connect(s.addr()).unwrap();
        c.send(
            format!(
                "GET /cgi-bin/{name} HTTP/1.1\r\nHost: x\r\n\r\nGET /cgi-bin/ok.sh HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let first = c.read_response(false).unwrap();
        assert_eq!(first.header("Content-Length"), length, "{name}");
        assert!(first.body.is_empty(), "{name}");
        assert!(first.header("Transfer-Encoding").is_none(), "{name}");
        let second = c.read_response(false).unwrap();
        assert_eq!(
            (second.status, &second.body[..]),
            (Some(200), &b"ok\n"[..]),
            "{name}: the next response was eaten into"
        );
    }
}

#[test]
fn a_scripts_own_date_and_server_are_dropped_one_of_each_is_sent() {
    let (_t, s) = script_server(&[(
        "ds.sh",
        "printf 'Date: Mon, 01 Jan 2001 00:00:00 GMT\\nServer: evil/1\\nContent-Type: text/plain\\n\\nx'\n",
    )]);
    let r = get(&s, "/cgi-bin/ds.sh", &[]);
    assert_eq!(r.headers_all("Date").len(), 1);
    assert_eq!(r.headers_all("Server").len(), 1);
    assert!(r.header("Server").unwrap().starts_with("tinyserve/"));
    assert!(!r.header("Date").unwrap().contains("2001"));
}

#[test]
fn a_complete_length_framed_body_does_not_wait_for_the_script_to_exit() {
    let (_t, s) = script_server(&[(
        "linger.sh",
        "printf 'Content-Type: text/plain\\nContent-Length: 2\\n\\nok'\nexec sleep 5\n",
    )]);
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"GET /cgi-bin/linger.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"ok");
    let started = Instant::now();
    c.send(b"GET /cgi-bin/linger.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"ok");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the second request waited {:?} for the first script",
        started.elapsed()
    );
}

fn pid_from(run: &str, name: &str) -> u32 {
    let path = format!("{run}/{name}");
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&path)
            .is_ok_and(|s| s.trim().parse::<u32>().is_ok())),
        "{path} never written"
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn gone(pid: u32) -> bool {
    proc_stat(pid).is_none_or(|(state, _)| state == 'Z')
}

#[test]
fn a_quiet_script_is_stopped_soon_after_its_client_leaving() {
    let t = TempTree::new("cgi-leave");
    let run = t.dir("run");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run.to_str().unwrap().to_string();
    t.script(
        "cgi-bin/quiet.sh",
        &format!(
            "#!/bin/sh\necho $$ > {run}/quiet.pid\nprintf 'Content-Type: text/plain\\n\\nstarted\\n'\nexec sleep 60\n"
        ),
    );
    // Its grandchild holds the output pipe and outlives the script.
    t.script(
        "cgi-bin/orphan.sh",
        &format!(
            "#!/bin/sh\n( sleep 300 ) &\necho $! > {run}/orphan.pid\n\
             printf 'Content-Type: text/plain\\n\\nstarted\\n'\nexec sleep 60\n"
        ),
    );
    let s = server(&t);
    for (script, pid_file) in [("quiet.sh", "quiet.pid"), ("orphan.sh", "orphan.pid")] {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.write_all(format!("GET /cgi-bin/{script} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 256];
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = c.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let pid = pid_from(&run, pid_file);
        assert!(!gone(pid));
        drop(c);
        // A client's end of input may be a half-close (it still reads):
        // its answer is waited for 5 s more, then the script is stopped
        // (timers run once a second).
        assert!(
            wait_until(Duration::from_millis(7500), || gone(pid)),
            "{script}: {pid} still runs after its client left"
        );
    }
}

#[test]
fn a_client_that_half_closes_still_gets_the_scripts_whole_answer() {
    let t = TempTree::new("cgi-half-close");
    t.script(
        "cgi-bin/slow.sh",
        "#!/bin/sh
sleep 1
printf 'Content-Type: text/plain\\n\\n'
seq 1 20000
",
    );
    let s = server(&t);
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.write_all(b"GET /cgi-bin/slow.sh HTTP/1.0\r\n\r\n")
        .unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 200 Script output follows"),
        "{text:.200}"
    );
    assert!(
        text.ends_with("19999\n20000\n"),
        "the whole output: {} bytes",
        all.len()
    );
}

#[test]
fn what_a_script_leaves_holding_its_output_is_stopped_and_the_response_ends() {
    let t = TempTree::new("cgi-stray");
    let run = t.dir("run");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run.to_str().unwrap().to_string();
    t.script(
        "cgi-bin/leaves.sh",
        &format!(
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nbye\\n'\n\
             ( sleep 300 ) &\necho $! > {run}/stray.pid\nexit 0\n"
        ),
    );
    let s = server(&t);
    let started = Instant::now();
    let mut c = Conn::connect(s.addr()).unwrap();
    c.send(b"GET /cgi-bin/leaves.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"bye\n");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the response waited {:?} for the stray child",
        started.elapsed()
    );
    let pid = pid_from(&run, "stray.pid");
    assert!(
        wait_until(Duration::from_secs(4), || gone(pid)),
        "the stray {pid} still runs"
    );
}

#[test]
fn scripts_get_the_open_file_limit_the_server_started_with() {
    let t = TempTree::new("cgi-nofile");
    t.script(
        "cgi-bin/limit.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nulimit -Sn\n",
    );
    // Started with a soft limit of 512 under a hard one of 4096: the server
    // raises its own to 4096; the script must see 512.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -Sn 512 && ulimit -Hn 4096 && exec {} -b 127.0.0.1 -d {} --cgi 0",
        tinyserve_bin(),
        t.root_str()
    ));
    scrub_cgi_env(&mut cmd);
    let s = Server::spawn(cmd, "tinyserve (ulimit 512/4096)".into());
    let status = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains("4096")),
        "{status}"
    );
    let r = get(&s, "/cgi-bin/limit.sh", &[]);
    assert_eq!(String::from_utf8_lossy(&r.body).trim(), "512");
}

#[test]
fn one_client_cannot_run_scripts_without_end() {
    let t = TempTree::new("cgi-many");
    t.script(
        "cgi-bin/hold.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nsleep 3\necho done\n",
    );
    let s = server(&t);
    // 80 at once: 64 run, the rest are told to come back.
    let conns: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.write_all(b"GET /cgi-bin/hold.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for mut c in conns {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        if text.starts_with("HTTP/1.1 200") {
            assert!(text.ends_with("done\n"), "{text}");
            ok += 1;
        } else if text.starts_with("HTTP/1.1 503 Server busy: too many CGI scripts running") {
            busy += 1;
        } else {
            panic!("unexpected answer: {text}");
        }
    }
    assert_eq!((ok, busy), (64, 16));
    // Once they are done, scripts run again.
    let r = get(&s, "/cgi-bin/hold.sh", &[]);
    assert_eq!(r.status, Some(200));
}

/// A body whose end only the close marks (HTTP/1.0 here), cut off by the
/// CGI timeout or by a client that stopped reading, ends with a reset: a
/// FIN would let the client take the truncated body for the whole one.
#[test]
fn a_close_delimited_body_cut_short_ends_with_a_reset() {
    let t = TempTree::new("cgi-cut");
    t.script(
        "cgi-bin/hang.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nstart\\n'\nsleep 30\n",
    );
    t.script(
        "cgi-bin/big.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nhead -c 50000000 /dev/zero\n",
    );
    let s = Server::tinyserve_with(
        &t.root,
        "HTTP/1.1",
        &["--cgi", "--cgi-timeout", "1", "--send-timeout", "1"],
    );
    let cut = |target: &str, wait_before_reading: Duration| {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.write_all(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        std::thread::sleep(wait_before_reading);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let end = c.read_to_end(&mut all);
        (end.map_err(|e| e.kind()), all.len())
    };
    let (end, got) = cut("/cgi-bin/hang.sh", Duration::ZERO);
    assert_eq!(
        end,
        Err(std::io::ErrorKind::ConnectionReset),
        "timed-out script: {got} bytes then a clean close"
    );
    let (end, got) = cut("/cgi-bin/big.sh", Duration::from_secs(4));
    assert!(got < 50_000_000, "the whole body came: {got}");
    assert_eq!(
        end,
        Err(std::io::ErrorKind::ConnectionReset),
        "abandoned response: {got} bytes then a clean close"
    );
}
