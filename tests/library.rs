//! The library, over real sockets: a server of this test process, in a
//! thread, with handlers written the way a user writes them. One test per
//! thing a user must be able to do (issue 10): methods, the request as
//! Python shows it, bodies, answers, errors, logging, forms, deferred work,
//! composition, binding and stopping.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use support::{Conn, Response, python, python_error_body};
use tinyserve::{
    BodyError, BodyHandler, BodySource, Exchange, FileHandler, FormLimits, Handler, Protocol,
    Server, ServerBuilder, ShutdownHandle,
};

/// A server running in a thread of this process; stopped on drop.
struct Running {
    addrs: Vec<SocketAddr>,
    stop: ShutdownHandle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) for a log line that `pred` accepts.
    fn wait_log(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(l) = self.log().into_iter().find(|l| pred(l)) {
                return Some(l);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `make(builder)` in a thread, the builder bound to 127.0.0.1:0
/// with its access log captured.
fn serve(make: impl FnOnce(ServerBuilder) -> std::io::Result<Server> + Send + 'static) -> Running {
    serve_on(&["127.0.0.1:0"], make)
}

fn serve_on(
    addrs: &[&str],
    make: impl FnOnce(ServerBuilder) -> std::io::Result<Server> + Send + 'static,
) -> Running {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut builder = ServerBuilder::new().log_to(move |line: &[u8]| {
            let text = String::from_utf8_lossy(line);
            sink.lock()
                .unwrap()
                .extend(text.lines().map(str::to_string));
        });
        for a in &addrs {
            builder = builder.bind(a.as_str())?;
        }
        let mut server = make(builder)?;
        tx.send((server.local_addrs(), server.shutdown_handle()))
            .unwrap();
        server.serve_forever()
    });
    let (addrs, stop) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server started");
    Running {
        addrs,
        stop,
        thread: Some(thread),
        log,
    }
}

fn conn(addr: SocketAddr) -> Conn {
    Conn::connect(addr).expect("connect")
}

/// One request on a fresh connection; its final answer.
fn ask(addr: SocketAddr, req: &str) -> Response {
    let mut c = conn(addr);
    c.send(req.as_bytes()).unwrap();
    c.read_final_response(req.starts_with("HEAD "))
        .unwrap_or_else(|e| panic!("{req:?}: {e}"))
}

fn get(addr: SocketAddr, path: &str) -> Response {
    ask(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

// ------------------------------------------------------------------ methods

struct Methods;

impl Handler for Methods {
    fn do_get(&self, r: &mut Exchange) {
        r.send_response(200);
        r.send_header("Content-Type", "text/plain");
        r.send_header("X-Method", r.command().to_string().as_str());
        r.end_headers();
        r.write(b"0123456789");
    }

    fn do_method(&self, r: &mut Exchange) {
        if r.command() == "SPAM" {
            r.send_response(200);
            r.end_headers();
            r.write(b"spam, spam, spam\n");
        } else {
            r.unsupported();
        }
    }
}

#[test]
fn methods_dispatch_as_do_method_with_pythons_501_and_head_from_get() {
    let s = serve(|b| b.build(Methods));
    let a = s.addr();

    let post = ask(a, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        post.status_line.as_deref(),
        Some("HTTP/1.1 501 Unsupported method ('POST')")
    );
    assert_eq!(
        post.text(),
        python_error_body(
            501,
            "Unsupported method ('POST')",
            "Server does not support this operation"
        )
    );
    assert_eq!(post.header("Connection"), Some("close"));

    let spam = ask(a, "SPAM / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(spam.status, Some(200));
    assert_eq!(spam.text(), "spam, spam, spam\n");

    let odd = ask(a, "EGGS / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(odd.reason.as_deref(), Some("Unsupported method ('EGGS')"));

    // HEAD falls back to GET: the same head, no body.
    let mut c = conn(a);
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = c.read_final_response(true).unwrap();
    let get = c.read_final_response(false).unwrap();
    assert_eq!(head.status, Some(200));
    assert!(head.body.is_empty());
    assert_eq!(head.header("Content-Length"), Some("10"));
    assert_eq!(head.header("X-Method"), Some("HEAD"));
    assert_eq!(get.text(), "0123456789");
    assert!(
        c.pending().is_empty(),
        "no body bytes of the HEAD answer: {:?}",
        c.pending()
    );
}

// ------------------------------------------------------------------ the request

fn show_request(r: &mut Exchange) {
    let mut lines = vec![
        format!("command={}", r.command()),
        format!("path={}", r.path()),
        format!("request_version={}", r.request_version()),
        format!("requestline={}", r.requestline()),
        format!("url_path={}", r.url_path()),
        format!("query={}", r.query()),
        format!("decoded_path={}", r.decoded_path()),
        format!("client_address={}", r.client_address()),
        format!("x-rep={}", r.header("x-REP").unwrap_or("-")),
        format!(
            "all={}",
            r.headers().get_all("X-Rep").collect::<Vec<_>>().join("|")
        ),
        format!("count={}", r.headers().len()),
    ];
    for (name, value) in r.headers().iter() {
        lines.push(format!("{name}: {value}"));
    }
    lines.push(String::new());
    r.send_response(200);
    r.end_headers();
    r.write(lines.join("\n").as_bytes());
}

#[test]
fn the_request_as_python_shows_it() {
    let s = serve(|b| b.build(show_request));
    let mut c = conn(s.addr());
    let local = c.stream.local_addr().unwrap();
    c.send(
        b"GET /a%20b/c%C3%A9?x=1&y=%20#frag HTTP/1.1\r\nHost: t\r\nX-Rep: one\r\n\
          accept: */*\r\nx-rep: two\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let r = c.read_final_response(false).unwrap();
    let want = format!(
        "command=GET\npath=/a%20b/c%C3%A9?x=1&y=%20#frag\nrequest_version=HTTP/1.1\n\
         requestline=GET /a%20b/c%C3%A9?x=1&y=%20#frag HTTP/1.1\nurl_path=/a%20b/c%C3%A9\n\
         query=x=1&y=%20\ndecoded_path=/a b/c\u{e9}\nclient_address={local}\nx-rep=one\n\
         all=one|two\ncount=5\nHost: t\nX-Rep: one\naccept: */*\nx-rep: two\nConnection: close\n"
    );
    assert_eq!(r.text(), want);
}

// ------------------------------------------------------------------ bodies

/// Counts a streamed body without keeping it.
struct Count {
    total: u64,
    largest: usize,
    sum: u64,
}

impl BodyHandler for Count {
    fn data(&mut self, piece: &[u8]) -> Result<(), BodyError> {
        self.total += piece.len() as u64;
        self.largest = self.largest.max(piece.len());
        self.sum = piece.iter().fold(self.sum, |s, &b| {
            s.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        Ok(())
    }

    fn end(self: Box<Self>, r: &mut Exchange) {
        r.send_response(200);
        r.end_headers();
        r.write(format!("{} {} {}", self.total, self.largest, self.sum).as_bytes());
    }
}

fn bodies(r: &mut Exchange) {
    match &*r.url_path() {
        "/whole" => r.read_body(1000, |r, body| {
            r.send_response(200);
            r.end_headers();
            r.write(&body);
        }),
        "/stream-in" => r.read_body_with(Count {
            total: 0,
            largest: 0,
            sum: 0,
        }),
        // Refused on its head: the body is never asked for.
        _ => r.send_error(403, None, None),
    }
}

#[test]
fn bodies_by_length_and_chunked_whole_or_streamed() {
    let s = serve(|b| b.build(bodies));
    let a = s.addr();
    let mut c = conn(a);
    c.send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "hello");
    c.send(
        b"POST /whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "abcdefg");

    // Past the handler's limit: 413, and the connection closes.
    c.send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        .unwrap();
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.status, Some(413));
    assert!(c.closed_within(Duration::from_secs(5)).unwrap());

    // 64 MiB streamed through in bounded pieces.
    let total: usize = 64 << 20;
    let mut c = conn(a);
    c.send(
        format!("POST /stream-in HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let block: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut want_sum = 0u64;
    for _ in 0..total / block.len() {
        c.send(&block).unwrap();
        want_sum = block.iter().fold(want_sum, |s, &b| {
            s.wrapping_mul(31).wrapping_add(u64::from(b))
        });
    }
    let r = c.read_final_response(false).unwrap();
    let text = r.text();
    let parts: Vec<&str> = text.split(' ').collect();
    assert_eq!(parts[0], total.to_string());
    let largest: usize = parts[1].parse().unwrap();
    assert!(largest <= 1 << 20, "pieces are bounded: {largest}");
    assert_eq!(parts[2], want_sum.to_string());
}

#[test]
fn continue_is_sent_only_when_the_handler_reads_the_body() {
    let s = serve(|b| b.build(bodies));
    let a = s.addr();

    let mut c = conn(a);
    c.send(b"POST /whole HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let interim = c.read_response(false).unwrap();
    assert_eq!(
        interim.status_line.as_deref(),
        Some("HTTP/1.1 100 Continue")
    );
    c.send(b"ok").unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "ok");

    let mut c = conn(a);
    c.send(
        b"POST /refuse HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, Some(403), "refused at once, no 100 first");

    // An HTTP/1.0 server sends no 100 at all, as Python's.
    let s = serve(|b| b.protocol(Protocol::Http10).build(bodies));
    let mut c = conn(s.addr());
    c.send(b"POST /whole HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    let early = c.stream.read(&mut b);
    assert!(early.is_err(), "nothing before the body: {early:?}");
    c.send(b"ok").unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "ok");
}

// ------------------------------------------------------------------ answers

/// Three pieces, as the client takes them.
struct Pieces(u8);

impl BodySource for Pieces {
    fn fill(&mut self, buf: &mut Vec<u8>, _max: usize) -> bool {
        self.0 += 1;
        buf.extend_from_slice(format!("piece {}\n", self.0).as_bytes());
        self.0 < 3
    }
}

struct Answers {
    file: std::path::PathBuf,
}

impl Handler for Answers {
    fn do_get(&self, r: &mut Exchange) {
        match &*r.url_path() {
            "/no-length" => {
                r.send_response(200);
                r.end_headers();
                r.write(b"abc");
                r.write(b"def");
            }
            "/stream" => {
                r.send_response(200);
                r.end_headers();
                r.stream(Pieces(0));
            }
            "/file" => {
                let file = std::fs::File::open(&self.file).unwrap();
                r.send_response(200);
                r.send_header("Content-Type", "application/octet-stream");
                r.end_headers();
                r.send_file_body(file, 2, 5);
            }
            "/teapot" => r.send_error(418, Some("Short & stout"), Some("I'm a <teapot>")),
            "/error" => r.send_error(404, None, None),
            _ => {
                r.send_response(204);
                r.end_headers();
                r.write(b"dropped");
            }
        }
    }
}

#[test]
fn answers_are_framed_for_the_handler_and_kept_alive() {
    let dir = support::TempTree::new("library-answers");
    let file = dir.file("f", b"0123456789");
    let s = serve(move |b| b.build(Answers { file }));
    let a = s.addr();
    let mut c = conn(a);
    for (path, body, framing) in [
        ("/no-length", &b"abcdef"[..], "Content-Length: 6"),
        (
            "/stream",
            b"piece 1\npiece 2\npiece 3\n",
            "Transfer-Encoding: chunked",
        ),
        ("/file", b"23456", "Content-Length: 5"),
        ("/nothing", b"", ""),
    ] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let r = c.read_final_response(false).unwrap();
        assert_eq!(r.body, body, "{path}");
        assert!(
            r.header("Server")
                .is_some_and(|v| v.starts_with("tinyserve/"))
        );
        assert!(r.header("Date").is_some_and(|v| v.ends_with(" GMT")));
        if let Some((name, value)) = framing.split_once(": ") {
            assert_eq!(r.header(name), Some(value), "{path}");
        }
        assert_eq!(r.header("Connection"), None, "{path}: kept alive");
    }
    // The same connection served all four.
    c.send(b"GET /no-length HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().body, b"abcdef");

    // To an HTTP/1.0 client a stream of unknown length ends by closing.
    let mut c = conn(a);
    c.send(b"GET /stream HTTP/1.0\r\n\r\n").unwrap();
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.body, b"piece 1\npiece 2\npiece 3\n");
    assert!(c.closed_within(Duration::from_secs(5)).unwrap());
}

/// `send_error(code, message, explain)` against Python's own.
#[test]
fn send_error_writes_pythons_page_byte_for_byte() {
    let dir = support::TempTree::new("library-teapot");
    let script = dir.file(
        "teapot.py",
        "import sys\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n\
         class H(BaseHTTPRequestHandler):\n    protocol_version = 'HTTP/1.1'\n\
         \x20   def do_GET(self):\n\
         \x20       if self.path == '/teapot':\n\
         \x20           self.send_error(418, 'Short & stout', \"I'm a <teapot>\")\n\
         \x20       else:\n            self.send_error(404)\n\
         s = HTTPServer(('127.0.0.1', 0), H)\n\
         print('Serving HTTP on 127.0.0.1 port %d' % s.server_address[1], flush=True)\n\
         s.serve_forever()\n"
            .as_bytes(),
    );
    let mut cmd = python().command();
    cmd.arg(&script);
    let py = support::Server::spawn(cmd, format!("{} teapot.py", python().version));
    let file = dir.path("unused");
    let s = serve(move |b| b.build(Answers { file }));
    for path in ["/teapot", "/error"] {
        let ours = get(s.addr(), path);
        let theirs = get(py.addr(), path);
        assert_eq!(ours.status_line, theirs.status_line, "{path}");
        assert_eq!(ours.body, theirs.body, "{path}: {}", ours.text());
        let strip = |r: &Response| -> Vec<(String, String)> {
            r.headers
                .iter()
                .filter(|(n, _)| n != "Server" && n != "Date")
                .cloned()
                .collect()
        };
        assert_eq!(strip(&ours), strip(&theirs), "{path}");
    }
}

// ------------------------------------------------------------------ logging

#[test]
fn the_access_log_is_pythons() {
    let s = serve(|b| b.build(Methods));
    get(s.addr(), "/x?y");
    ask(
        s.addr(),
        "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    let line = s
        .wait_log(|l| l.contains("\"GET /x?y HTTP/1.1\""))
        .expect("logged");
    let shape = |l: &str| {
        let (ip, rest) = l.split_once(" - - [").unwrap();
        let (date, rest) = rest.split_once("] ").unwrap();
        (ip.to_string(), date.len(), rest.to_string())
    };
    // 127.0.0.1 - - [01/Dec/2026 08:10:35] "GET /x?y HTTP/1.1" 200 -
    assert_eq!(
        shape(&line),
        ("127.0.0.1".into(), 20, "\"GET /x?y HTTP/1.1\" 200 -".into())
    );
    let error = s
        .wait_log(|l| l.contains("code 501"))
        .expect("error logged");
    assert!(
        error.ends_with("code 501, message Unsupported method ('POST')"),
        "{error}"
    );
    s.wait_log(|l| l.ends_with("\"POST /p HTTP/1.1\" 501 -"))
        .expect("request logged after its error, as Python");

    // Quiet: nothing.
    let q = serve(|b| b.quiet(true).build(Methods));
    get(q.addr(), "/");
    thread::sleep(Duration::from_millis(100));
    assert!(q.log().is_empty(), "{:?}", q.log());
}

// ------------------------------------------------------------------ forms

fn form_handler(r: &mut Exchange) {
    let limits = FormLimits {
        max_fields: 100,
        max_files: 10_000,
        memory_threshold: 10,
        ..FormLimits::default()
    };
    r.read_form(limits, |r, form| {
        let mut out = String::new();
        for (k, v) in &form.fields {
            out.push_str(&format!("{k}={v}\n"));
        }
        for f in &form.files {
            let mut data = Vec::new();
            f.reader().read_to_end(&mut data).unwrap();
            out.push_str(&format!(
                "{}:{}:{}:{}:{}\n",
                f.field,
                f.filename,
                f.len,
                f.bytes().is_some(),
                String::from_utf8_lossy(&data)
            ));
        }
        r.send_response(200);
        r.end_headers();
        r.write(out.as_bytes());
    });
}

fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> Response {
    let mut c = conn(addr);
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    c.send(&req).unwrap();
    c.read_final_response(false).unwrap()
}

#[test]
fn forms_urlencoded_and_multipart_with_limits() {
    let s = serve(|b| b.build(form_handler));
    let a = s.addr();
    let r = post(a, "application/x-www-form-urlencoded", b"a=1&b=x+y%21&c=");
    assert_eq!(r.text(), "a=1\nb=x y!\n");

    let body = b"--zz\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nv\r\n\
--zz\r\nContent-Disposition: form-data; name=\"small\"; filename=\"s.txt\"\r\n\r\nshort\r\n\
--zz\r\nContent-Disposition: form-data; name=\"big\"; filename=\"b.txt\"\r\n\r\n\
line one\r\nline two\r\n\r\n--zz--\r\n";
    let r = post(a, "multipart/form-data; boundary=zz", body);
    assert_eq!(
        r.text(),
        "t=v\nsmall:s.txt:5:true:short\nbig:b.txt:20:false:line one\r\nline two\r\n\n"
    );

    let too_many_fields = format!("a={}", "x".repeat(200));
    let r = post(
        a,
        "application/x-www-form-urlencoded",
        too_many_fields.as_bytes(),
    );
    assert_eq!(r.status, Some(413));
    let r = post(
        a,
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nv",
    );
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (Some(400), Some("Incomplete multipart body"))
    );
    let r = post(a, "text/plain", b"hi");
    assert_eq!(r.status, Some(415));
    let r = post(
        a,
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n",
    );
    assert_eq!(r.status, Some(400));
}

// ------------------------------------------------------------------ deferred work

/// `?ms=N` sleeps N ms on a worker, then answers with the worker's name;
/// no query answers at once, on the loop. `seen` counts the requests the
/// loop has handed out.
fn slow(seen: Arc<AtomicUsize>) -> impl Fn(&mut Exchange) {
    move |r: &mut Exchange| {
        seen.fetch_add(1, Ordering::SeqCst);
        let ms: u64 = r
            .query()
            .strip_prefix("ms=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ms == 0 {
            r.send_response(200);
            r.end_headers();
            r.write(b"at once");
            return;
        }
        r.defer(move |r| {
            thread::sleep(Duration::from_millis(ms));
            r.send_response(200);
            r.end_headers();
            let name = thread::current().name().unwrap_or("").to_string();
            r.write(format!("slept {ms} on {name}").as_bytes());
        });
    }
}

fn wait_for(count: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the server took {n} requests");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn deferred_work_runs_on_workers_and_the_loop_keeps_serving() {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let s = serve(move |b| {
        b.workers(2, 1)
            .defer_timeout(Duration::from_millis(1500))
            .build(slow(count))
    });
    let a = s.addr();
    // Two jobs running, one waiting: the pool (2 + 1) is full.
    let mut busy: Vec<Conn> = (0..3)
        .map(|_| {
            let mut c = conn(a);
            c.send(b"GET /?ms=800 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            c
        })
        .collect();
    wait_for(&seen, 3);
    let full = get(a, "/?ms=10");
    assert_eq!(full.status, Some(503), "{}", full.text());
    // The loop answers meanwhile.
    let quick = get(a, "/");
    assert_eq!(quick.text(), "at once");
    let mut names = Vec::new();
    for c in &mut busy {
        let r = c.read_final_response(false).unwrap();
        assert_eq!(r.status, Some(200));
        names.push(r.text());
    }
    assert!(
        names.iter().all(|n| n.starts_with("slept 800 on Thread-")),
        "{names:?}"
    );

    // Longer than the defer timeout: 504.
    let late = get(a, "/?ms=3000");
    assert_eq!(late.status, Some(504));
}

#[test]
fn a_client_that_leaves_before_its_deferred_answer_costs_nothing() {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let s = serve(move |b| b.workers(1, 4).build(slow(count)));
    let a = s.addr();
    for _ in 0..4 {
        let mut c = conn(a);
        c.send(b"GET /?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        drop(c);
    }
    wait_for(&seen, 4);
    // The abandoned jobs finish; the worker then serves the next one.
    let mut c = conn(a);
    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    c.timeout = Duration::from_secs(10);
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.text(), "slept 1 on Thread-1");
    assert_eq!(get(a, "/").text(), "at once");
}

// ------------------------------------------------------------------ composition

/// `/api/*` from code, everything else from a directory, as a
/// `SimpleHTTPRequestHandler` subclass calling `super().do_GET()`.
struct Api {
    files: FileHandler,
}

impl Handler for Api {
    fn do_get(&self, r: &mut Exchange) {
        if let Some(name) = r.url_path().strip_prefix("/api/") {
            let body = format!("api {name}");
            r.send_response(200);
            r.end_headers();
            r.write(body.as_bytes());
        } else {
            self.files.do_get(r);
        }
    }
}

#[test]
fn handlers_compose_with_the_file_server() {
    let dir = support::TempTree::new("library-compose");
    dir.file("page.txt", b"0123456789");
    dir.dir("sub");
    let root = dir.path("");
    let s = serve(move |b| {
        let files = FileHandler::new(&root)?;
        b.build(Api { files })
    });
    let a = s.addr();
    assert_eq!(get(a, "/api/time").text(), "api time");
    let page = get(a, "/page.txt");
    assert_eq!(page.text(), "0123456789");
    let etag = page.header("ETag").expect("ETag").to_string();
    let range = ask(
        a,
        "GET /page.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=2-4\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((range.status, range.text().as_str()), (Some(206), "234"));
    let cached = ask(
        a,
        &format!(
            "GET /page.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(cached.status, Some(304));
    assert_eq!(get(a, "/sub").status, Some(301));
    assert!(get(a, "/").text().contains("page.txt"));
    assert_eq!(get(a, "/../../etc/passwd").status, Some(404));
    let head = ask(
        a,
        "HEAD /page.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.header("Content-Length"), Some("10"));
}

// ------------------------------------------------------------------ strictness

#[test]
fn the_library_is_strict_by_default() {
    let s = serve(|b| b.build(show_request));
    for req in [
        &b"GET /\r\n\r\n"[..],
        b"GET / \r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut c = conn(s.addr());
        c.send(req).unwrap();
        let r = c.read_final_response(false).unwrap();
        assert_eq!(
            r.status,
            Some(400),
            "{:?}: {r:?}",
            String::from_utf8_lossy(req)
        );
        assert!(r.status_line.is_some(), "an HTTP/1.x status line");
    }
}

// ------------------------------------------------------------------ run and stop

fn blocked_signals(r: &mut Exchange) {
    // SAFETY: plain queries of this thread's signal mask and SIGINT's action.
    let (blocked, default) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old);
        (
            libc::sigismember(&set, libc::SIGINT) == 1
                || libc::sigismember(&set, libc::SIGTERM) == 1,
            old.sa_sigaction == libc::SIG_DFL,
        )
    };
    r.send_response(200);
    r.end_headers();
    r.write(format!("blocked={blocked} default={default}").as_bytes());
}

#[test]
fn bind_several_listeners_ipv6_port_zero_and_stop_from_another_thread() {
    assert!(
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "this test needs IPv6 on loopback (::1)"
    );
    let mut s = serve_on(&["127.0.0.1:0", "[::1]:0"], |b| b.build(blocked_signals));
    assert_eq!(s.addrs.len(), 2);
    assert!(s.addrs.iter().all(|a| a.port() != 0));
    assert!(s.addrs[1].is_ipv6());
    for &a in &s.addrs {
        // The process's signals are left alone.
        assert_eq!(get(a, "/").text(), "blocked=false default=true");
    }
    // An idle keep-alive client does not hold the server up.
    let mut idle = TcpStream::connect(s.addrs[0]).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 512];
    assert!(idle.read(&mut b).unwrap() > 0);

    let stop = s.stop.clone();
    let stopper = thread::spawn(move || stop.shutdown());
    stopper.join().unwrap();
    let t = s.thread.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !t.is_finished() {
        assert!(
            Instant::now() < deadline,
            "serve_forever returns after shutdown"
        );
        thread::sleep(Duration::from_millis(10));
    }
    t.join().unwrap().unwrap();
    assert!(
        TcpStream::connect(s.addrs[0]).is_err(),
        "the listener is closed"
    );
}

// ------------------------------------------------------------------ found in review

/// Short timeouts, so a stall shows within a test.
fn quick_timeouts() -> tinyserve::Timeouts {
    tinyserve::Timeouts {
        head: Duration::from_secs(1),
        idle: Duration::from_secs(1),
        send: Duration::from_secs(2),
        linger: Duration::from_secs(1),
        cgi: Duration::from_secs(5),
    }
}

#[test]
fn an_upload_that_keeps_moving_outlives_the_head_and_idle_timeouts_and_a_stalled_one_gets_408() {
    let s = serve(|b| b.timeouts(quick_timeouts()).build(bodies));
    let a = s.addr();
    // 96 KiB at about 32 KiB a second, with the head split in two: longer
    // than the head (1 s) and idle (1 s) timeouts, never stalled.
    let mut c = conn(a);
    c.send(b"POST /stream-in HTTP/1.1\r\nHost: t\r\n").unwrap();
    thread::sleep(Duration::from_millis(300));
    c.send(b"Content-Length: 98304\r\n\r\n").unwrap();
    for _ in 0..6 {
        c.send(&[b'u'; 16384]).unwrap();
        thread::sleep(Duration::from_millis(500));
    }
    let r = c.read_final_response(false).unwrap();
    assert!(r.text().starts_with("98304 "), "{r:?}");

    // A body that stops: 408 after the send timeout, and the connection ends.
    let mut c = conn(a);
    c.send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    c.timeout = Duration::from_secs(6);
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.status, Some(408), "{r:?}");
    assert!(c.closed_within(Duration::from_secs(3)).unwrap());
    s.wait_log(|l| l.contains("Request body timed out"))
        .expect("logged");
}

fn defers_with_body(r: &mut Exchange) {
    r.defer(|r| {
        r.read_body(1000, |r, body| {
            r.send_response(200);
            r.end_headers();
            r.write(&body);
        })
    });
}

#[test]
fn deferred_work_reads_the_body_and_keeps_the_connection_in_step() {
    let s = serve(|b| b.build(defers_with_body));
    let mut c = conn(s.addr());
    c.send(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "hello");
    c.send(
        b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "abc");
    c.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(c.read_final_response(false).unwrap().text(), "");
}

#[test]
fn a_pending_poll_does_not_spin_and_gets_504() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let s = serve(move |b| {
        b.defer_timeout(Duration::from_secs(2))
            .build(move |r: &mut Exchange| {
                let counted = counted.clone();
                r.poll(move |_| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    tinyserve::Poll::Pending
                })
            })
    });
    let mut c = conn(s.addr());
    c.timeout = Duration::from_secs(6);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.status, Some(504));
    let n = calls.load(Ordering::Relaxed);
    // Called every few milliseconds for about 2 s: hundreds of times, not
    // the millions of a loop that spins.
    assert!((10..=2000).contains(&n), "{n} calls");
}

#[test]
fn a_client_that_half_closes_still_gets_its_deferred_answer() {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let s = serve(move |b| b.build(slow(count)));
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.write_all(b"GET /?ms=500 HTTP/1.0\r\n\r\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.ends_with("slept 500 on Thread-1"), "{all}");
}

#[test]
fn jobs_of_clients_that_left_are_not_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    let s = serve(move |b| {
        b.workers(1, 16).build(move |r: &mut Exchange| {
            let counted = counted.clone();
            r.defer(move |r| {
                // Longer than the half-close grace (5 s): the clients that
                // left are known gone before the worker is free.
                let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
                thread::sleep(Duration::from_millis(if first { 6000 } else { 10 }));
                r.send_response(200);
                r.end_headers();
            })
        })
    });
    let a = s.addr();
    let mut first = conn(a);
    first.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    wait_for(&ran, 1);
    for _ in 0..8 {
        let mut c = conn(a);
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        drop(c); // queued behind the first, then gone
    }
    thread::sleep(Duration::from_millis(100));
    let mut last = conn(a);
    last.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    first.timeout = Duration::from_secs(10);
    last.timeout = Duration::from_secs(10);
    assert_eq!(first.read_final_response(false).unwrap().status, Some(200));
    assert_eq!(last.read_final_response(false).unwrap().status, Some(200));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "the eight abandoned jobs were skipped"
    );
}

/// A stream or body whose handler gave a `Content-Length` it does not keep.
fn liars(r: &mut Exchange) {
    let q = r.query().to_string();
    let (declared, made): (u64, usize) = {
        let mut it = q.split(',').map(|v| v.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0) as usize)
    };
    r.send_response(200);
    r.send_header_num("Content-Length", declared);
    r.end_headers();
    if r.url_path() == "/stream" {
        struct Once(Option<Vec<u8>>);
        impl BodySource for Once {
            fn fill(&mut self, buf: &mut Vec<u8>, _: usize) -> bool {
                if let Some(b) = self.0.take() {
                    buf.extend_from_slice(&b);
                }
                false
            }
        }
        r.stream(Once(Some(vec![b's'; made])));
    } else {
        r.write(&vec![b'w'; made]);
    }
}

#[test]
fn a_body_that_breaks_its_content_length_is_cut_and_closes() {
    let s = serve(|b| b.build(liars));
    for (path, body, closes) in [
        ("/stream?3,40", &b"sss"[..], true),
        ("/stream?10,5", b"sssss", true),
        ("/stream?4,4", b"ssss", false),
        ("/write?3,40", b"www", true),
        ("/write?2,2", b"ww", false),
    ] {
        let mut c = conn(s.addr());
        c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        // Read everything up to the close (or a pause): nothing past the
        // declared length may come.
        let mut got = Vec::new();
        c.stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let (_, sent_body) = text.split_once("\r\n\r\n").expect("a head");
        assert_eq!(sent_body.as_bytes(), body, "{path}");
        assert_eq!(closed, closes, "{path}");
    }
}

fn unknown_length_stream(r: &mut Exchange) {
    r.send_response(200);
    r.send_header("Content-Length", "+3");
    r.end_headers();
    r.stream(Pieces(0));
}

#[test]
fn an_http10_client_is_never_sent_chunks_and_odd_lengths_are_ignored() {
    let s = serve(|b| b.build(unknown_length_stream));
    let mut c = conn(s.addr());
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c.read_final_response(false).unwrap();
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.header("Content-Length"), None, "'+3' is not a length");
    assert_eq!(r.body, b"piece 1\npiece 2\npiece 3\n");
    assert!(c.closed_within(Duration::from_secs(3)).unwrap());
}

#[test]
fn bodies_held_whole_have_a_server_wide_ceiling() {
    let s = serve(|b| b.max_body_memory(1000).build(bodies));
    let a = s.addr();
    let mut holder = conn(a);
    holder
        .send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n")
        .unwrap();
    holder.send(&[b'h'; 700]).unwrap();
    thread::sleep(Duration::from_millis(200));
    let mut other = conn(a);
    other
        .send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n")
        .unwrap();
    other.send(&[b'o'; 900]).unwrap();
    let r = other.read_final_response(false).unwrap();
    assert_eq!(r.status, Some(503), "{r:?}");
    // The first finishes; its memory is given back, and the next fits.
    holder.send(&[b'h'; 200]).unwrap();
    assert_eq!(holder.read_final_response(false).unwrap().body.len(), 900);
    let mut again = conn(a);
    again
        .send(b"POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n")
        .unwrap();
    again.send(&[b'a'; 900]).unwrap();
    assert_eq!(again.read_final_response(false).unwrap().body.len(), 900);
}
