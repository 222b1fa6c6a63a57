//! Each example of `examples/` against its Python original in
//! `examples/python/`, side by side over real sockets: the same status
//! line, the same headers but `Server` and `Date`, the same body where it
//! is deterministic (a client's port, the server's version and a thread's
//! name are masked; a form's fields are compared as a set, since
//! `cgi.FieldStorage.keys()` has no order).
//!
//! Python: the newest found (`support::python`), except for
//! `http_server_POST.py`, which needs `cgi.FieldStorage` and so Python
//! 3.12 or 3.11 (3.13 removed `cgi`): the newest of those found.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{Conn, Python, Response, Server, python};

/// `target/<profile>/examples/NAME`, next to the tinyserve binary (cargo
/// builds the examples with the tests).
fn example(name: &str) -> Server {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tinyserve"));
    let exe = bin
        .parent()
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        exe.exists(),
        "{} is not built: run the whole suite (`cargo test` builds the examples)",
        exe.display()
    );
    let mut cmd = Command::new(&exe);
    cmd.arg("0");
    Server::spawn(cmd, format!("example {name}"))
}

/// The Python original, under `py`.
fn original(py: &Python, script: &str) -> Server {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/python")
        .join(script);
    let mut cmd = py.command();
    cmd.arg("-u")
        .arg(&path)
        .arg("0")
        .env("PYTHONWARNINGS", "ignore")
        .env_remove("PYTHONPATH");
    Server::spawn(cmd, format!("{} {script}", py.version))
}

/// The newest Python that still has `cgi` (3.12 or older).
fn python_with_cgi() -> Python {
    let out = Command::new("pyenv")
        .args(["versions", "--bare"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let mut found: Vec<((u32, u32, u32), String)> = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: Vec<u32> = l
                .trim()
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            (v.len() == 3 && v[0] == 3 && (8..=12).contains(&v[1]))
                .then(|| ((v[0], v[1], v[2]), l.trim().to_string()))
        })
        .collect();
    found.sort();
    let pyenv_version = found.pop().map(|(_, name)| name);
    let py = Python {
        program: "python3".into(),
        pyenv_version,
        version: String::new(),
    };
    let out = py
        .command()
        .args(["-c", "import cgi, sys; print(sys.version.split()[0])"])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "no Python with the cgi module (3.12 or older) for http_server_POST.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = format!("Python {}", String::from_utf8_lossy(&out.stdout).trim());
    eprintln!("http_server_POST.py runs under {version}");
    Python { version, ..py }
}

fn exchange(addr: SocketAddr, req: &[u8]) -> Response {
    let mut c = Conn::connect(addr).expect("connect");
    c.send(req).unwrap();
    c.read_final_response(false)
        .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(req)))
}

/// The status line and every header but `Server` and `Date`, in order.
fn head_of(r: &Response) -> Vec<String> {
    let mut out = vec![r.status_line.clone().unwrap_or_default()];
    for (name, value) in &r.headers {
        if !name.eq_ignore_ascii_case("Server") && !name.eq_ignore_ascii_case("Date") {
            out.push(format!("{name}: {value}"));
        }
    }
    out
}

/// Replaces what follows `prefix` on each line starting with it.
fn mask(text: &str, prefixes: &[&str]) -> String {
    text.split_inclusive('\n')
        .map(
            |line| match prefixes.iter().find(|p| line.starts_with(*p)) {
                Some(p) => {
                    let end = if line.ends_with("\r\n") {
                        "\r\n"
                    } else if line.ends_with('\n') {
                        "\n"
                    } else {
                        ""
                    };
                    format!("{p}<masked>{end}")
                }
                None => line.to_string(),
            },
        )
        .collect()
}

#[test]
fn http_server_get_answers_as_python() {
    let py = python();
    let ours = example("http_server_get");
    let theirs = original(py, "http_server_GET.py");
    let requests: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.51.0\r\nAccept: */*\r\n\r\n".to_vec(),
        b"GET /?foo=bar HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.51.0\r\nAccept: */*\r\n\r\n".to_vec(),
        b"GET /a%20b/c.html?x=1&y=%2F#frag HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /x HTTP/1.1\r\nHost: h\r\nx-b: 2\r\nX-A: 1\r\nx-b: 1\r\nZ: trailing   \r\nLatin: caf\xe9\r\n\r\n".to_vec(),
        b"GET http://example.com/abs?q HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody".to_vec(),
        b"PUT /x HTTP/1.0\r\n\r\n".to_vec(),
    ];
    let masks = ["client_address=", "server_version=", "sys_version="];
    for req in &requests {
        let a = exchange(ours.addr(), req);
        let b = exchange(theirs.addr(), req);
        let what = String::from_utf8_lossy(req);
        assert_eq!(head_of(&a), head_of(&b), "{what}");
        assert_eq!(mask(&a.text(), &masks), mask(&b.text(), &masks), "{what}");
    }
    // The masked line is Python's shape, with the client's own port.
    let mut c = Conn::connect(ours.addr()).unwrap();
    let port = c.stream.local_addr().unwrap().port();
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let text = c.read_final_response(false).unwrap().text();
    assert!(
        text.contains(&format!(
            "\r\nclient_address=('127.0.0.1', {port}) (127.0.0.1)\r\n"
        )),
        "{text}"
    );
}

/// A multipart body as `curl -F` makes it.
fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, filename, data) in parts {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = filename {
            b.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes(),
            );
        }
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

fn post_request(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\
         Content-Length: {}\r\nContent-Type: {content_type}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// The answer's first lines as they are (the client's port masked), then
/// the form's lines sorted.
fn post_answer(r: &Response) -> (Vec<String>, Vec<String>) {
    let text = r.text();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l == "Form data:")
        .map_or(lines.len(), |i| i + 1);
    let mut form = lines.split_off(at);
    form.sort();
    let lines = lines
        .into_iter()
        .map(|l| {
            if l.starts_with("Client: ") {
                "Client: <masked>".into()
            } else {
                l
            }
        })
        .collect();
    (lines, form)
}

#[test]
fn http_server_post_answers_as_python() {
    let py = python_with_cgi();
    let ours = example("http_server_post");
    let theirs = original(&py, "http_server_POST.py");
    let source = std::fs::read("examples/python/http_server_GET.py").unwrap();
    let binary: Vec<u8> = (0..70_000u32)
        .map(|i| if i % 997 == 0 { b'\r' } else { (i % 256) as u8 })
        .chain(b"\r\n--not-the-boundary\r\n".iter().copied())
        .collect();
    let boundary = "------------------------6350146384064063";
    let cases: Vec<Vec<u8>> = vec![
        post_request(
            &format!("multipart/form-data; boundary={boundary}"),
            &multipart(
                boundary,
                &[
                    ("name", None, b"alvin"),
                    ("foo", None, b"bar"),
                    ("datafile", Some("http_server_GET.py"), &source),
                ],
            ),
        ),
        post_request(
            "multipart/form-data; boundary=XyZ",
            &multipart(
                "XyZ",
                &[
                    ("caf\u{e9}", None, "cr\u{e8}me br\u{fb}l\u{e9}e".as_bytes()),
                    ("blank", None, b""),
                    ("bin", Some("it's \\\"quoted\\\".bin"), &binary),
                    ("empty", Some("empty.txt"), b""),
                    ("tab", Some("tab\there.txt"), b"x"),
                ],
            ),
        ),
        post_request(
            "application/x-www-form-urlencoded",
            b"a=1&b=x+y&c=%41%42&d=&sp=a%20b",
        ),
        post_request("application/x-www-form-urlencoded", b""),
    ];
    for req in &cases {
        let a = exchange(ours.addr(), req);
        let b = exchange(theirs.addr(), req);
        let what = String::from_utf8_lossy(&req[..req.len().min(300)]).into_owned();
        assert_eq!(head_of(&a), head_of(&b), "{what}");
        assert_eq!(post_answer(&a), post_answer(&b), "{what}");
    }
    // GET: neither has do_GET.
    let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (a, b) = (exchange(ours.addr(), req), exchange(theirs.addr(), req));
    assert_eq!(head_of(&a), head_of(&b));
    assert_eq!(a.body, b.body);
}

/// `Thread-7` (ours) and `Thread-7 (process_request_thread)` (Python 3.10+)
/// alike.
fn thread_shape(body: &str) -> String {
    let Some(rest) = body.strip_prefix("Thread-") else {
        return body.to_string();
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let rest = &rest[digits..];
    let rest = rest
        .strip_prefix(" (process_request_thread)")
        .unwrap_or(rest);
    if digits == 0 {
        body.to_string()
    } else {
        format!("Thread-N{rest}")
    }
}

#[test]
fn http_server_threads_answers_as_python_and_blocks_only_its_worker() {
    let py = python();
    let ours = example("http_server_threads");
    let theirs = original(py, "http_server_threads.py");
    let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let a = exchange(ours.addr(), req);
    let b = exchange(theirs.addr(), req);
    assert_eq!(head_of(&a), head_of(&b));
    assert_eq!(thread_shape(&a.text()), "Thread-N\n");
    assert_eq!(thread_shape(&b.text()), "Thread-N\n");
    for server in [&ours, &theirs] {
        // Four sleepers at once, then one that does not sleep: it is
        // answered first, and the sleepers each had a thread of their own.
        let mut sleepers: Vec<Conn> = (0..4)
            .map(|_| {
                let mut c = Conn::connect(server.addr()).unwrap();
                c.send(b"GET /?sleep=1 HTTP/1.1\r\nHost: h\r\n\r\n")
                    .unwrap();
                c
            })
            .collect();
        let quick = exchange(server.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            thread_shape(&quick.text()),
            "Thread-N\n",
            "{}",
            server.label
        );
        for c in &sleepers {
            assert!(
                !has_data(&c.stream),
                "{}: a sleeper answered before the quick one",
                server.label
            );
        }
        let mut names: Vec<String> = sleepers
            .iter_mut()
            .map(|c| c.read_final_response(false).unwrap().text())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 4, "{}: {names:?}", server.label);
        assert!(!names.contains(&quick.text()), "{}", server.label);
    }
}

/// Bytes are waiting to be read.
fn has_data(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let ready = stream.peek(&mut b).is_ok();
    stream.set_nonblocking(false).unwrap();
    ready
}

#[test]
fn http_server_errors_answers_as_python() {
    let py = python();
    let ours = example("http_server_errors");
    let theirs = original(py, "http_server_errors.py");
    for req in [
        &b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /anything?x HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    ] {
        let a = exchange(ours.addr(), req);
        let b = exchange(theirs.addr(), req);
        assert_eq!(head_of(&a), head_of(&b));
        assert_eq!(a.body, b.body, "{}", a.text());
    }
}

#[test]
fn http_server_headers_answers_as_python() {
    let py = python();
    let ours = example("http_server_headers");
    let theirs = original(py, "http_server_send_header.py");
    let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let a = exchange(ours.addr(), req);
    let b = exchange(theirs.addr(), req);
    let without_last_modified = |r: &Response| -> Vec<String> {
        head_of(r)
            .into_iter()
            .filter(|l| !l.starts_with("Last-Modified: "))
            .collect()
    };
    assert_eq!(without_last_modified(&a), without_last_modified(&b));
    assert_eq!(a.body, b"Response body\n");
    assert_eq!(a.body, b.body);
    for r in [&a, &b] {
        // Set to now: the same instant as the Date header.
        assert_eq!(r.header("Last-Modified"), r.header("Date"));
    }
}

#[test]
fn hello_answers_as_python_and_keeps_the_connection() {
    let py = python();
    let ours = example("hello");
    let theirs = original(py, "hello.py");
    let mut heads = Vec::new();
    for server in [&ours, &theirs] {
        let mut c = Conn::connect(server.addr()).unwrap();
        let mut answers = Vec::new();
        for _ in 0..3 {
            c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            let r = c.read_final_response(false).unwrap();
            assert_eq!(r.body, b"Hello, world!\n");
            answers.push(head_of(&r));
        }
        assert!(
            !c.closed_within(Duration::from_millis(200)).unwrap(),
            "{}: kept alive",
            server.label
        );
        heads.push(answers);
    }
    assert_eq!(heads[0], heads[1]);
}

#[test]
fn echo_echoes_every_method_and_framing() {
    let ours = example("echo");
    let mut c = Conn::connect(ours.addr()).unwrap();
    c.send(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().body, b"hello");
    c.send(
        b"DELETE /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().body, b"hi");
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let r = c.read_final_response(false).unwrap();
    assert_eq!(
        (r.status, r.header("Content-Length")),
        (Some(200), Some("0"))
    );
    c.send(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(
        c.read_final_response(false).unwrap().status,
        Some(400),
        "no Host"
    );
}

#[test]
fn site_serves_files_and_code() {
    let dir = support::TempTree::new("example-site");
    dir.file("index.html", b"<p>hi</p>\n");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tinyserve"));
    let exe = bin.parent().unwrap().join("examples/site");
    let mut cmd = Command::new(exe);
    cmd.arg("0").arg(dir.root_str());
    let site = Server::spawn(cmd, "example site".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let time = exchange(site.addr(), b"GET /api/time HTTP/1.1\r\nHost: h\r\n\r\n");
    let said: u64 = time.text().trim().parse().expect("a number");
    assert!(said.abs_diff(now) < 60, "{said} vs {now}");
    let index = exchange(site.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(index.body, b"<p>hi</p>\n");
    assert_eq!(index.header("Content-Type"), Some("text/html"));
    let missing = exchange(site.addr(), b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(missing.status, Some(404));
}
