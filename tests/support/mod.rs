//! Shared helpers for tinyserve's integration tests.
//!
//! Use from a test file with `mod support;` and then `use support::*;`.
//!
//! What is here:
//!
//! * [`Server`]: spawns `tinyserve` (or the Python reference server,
//!   `python3 -m http.server`) on `127.0.0.1` with port 0, waits for the
//!   startup banner, parses the port from it, captures stderr (the access
//!   log) line by line, and kills the child on drop (SIGTERM, then SIGKILL).
//! * [`python`]: finds the newest Python 3 (through pyenv when present).
//!   Panics when there is none: tests that need the reference must fail
//!   loudly, never skip.
//! * Raw TCP clients: [`raw_request`] (write, half-close, read to EOF),
//!   [`raw_request_opts`], [`request_one`] (no half-close, reads exactly
//!   one response) and [`Conn`] (a keep-alive connection that reads
//!   response after response, for pipelining tests).
//! * [`Response`]: a small, lenient response parser (status line, headers in
//!   wire order and case, body), which also understands HTTP/0.9 style
//!   body-only answers and streams of several responses (100 Continue,
//!   pipelining).
//! * [`fixture_tree`]: builds a throw-away document root full of awkward
//!   names, symlinks and many file extensions; removed again on drop.
//! * [`python_error_body`]: the exact error page Python's http.server sends.
//! * [`dechunk`]: decodes a chunked body ([`Response::parse_stream`] and
//!   [`Conn`] use it for `Transfer-Encoding: chunked` responses).
//! * CGI: [`TempTree`] (a world-readable tree under /tmp for scripts that
//!   run as `nobody`), [`Server::tinyserve_with`] / [`Server::python_cgi`]
//!   (servers with the CGI variables scrubbed from their environment), and
//!   `/proc` helpers: [`proc_stat`], [`child_pids`], [`proc_status_kib`],
//!   [`process_gone`], [`wait_until`].
//!
//! Everything has short timeouts so that a hung server makes a test fail in
//! seconds instead of hanging the suite.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long [`Server::start`] waits for the startup banner.
pub const BANNER_TIMEOUT: Duration = Duration::from_secs(10);
/// Overall deadline for reading one exchange in the raw clients.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Path of the tinyserve binary built by cargo for integration tests, or the
/// program named by the `TINYSERVE_BIN` environment variable (to test e.g. a
/// release build, or a stand-in while the server does not build).
pub fn tinyserve_bin() -> String {
    std::env::var("TINYSERVE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tinyserve").to_string())
}

// ---------------------------------------------------------------------------
// Python discovery
// ---------------------------------------------------------------------------

/// The Python interpreter used as the reference implementation.
#[derive(Debug, Clone)]
pub struct Python {
    /// Program to run (`python3`, found through PATH / the pyenv shim).
    pub program: String,
    /// `Some("3.13.0")` when selected through pyenv (`PYENV_VERSION`).
    pub pyenv_version: Option<String>,
    /// Output of `python3 --version`, e.g. `Python 3.13.0`.
    pub version: String,
}

impl Python {
    /// A `Command` for this interpreter, with `PYENV_VERSION` set if needed.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(v) = &self.pyenv_version {
            cmd.env("PYENV_VERSION", v);
        }
        cmd
    }
}

/// Parses `3.13.0` into `(3, 13, 0)`; `None` for anything else
/// (`system`, virtualenv names, `3.13-dev`, 2.x, ...).
fn parse_py3_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('.');
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    let patch: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || major != 3 {
        return None;
    }
    Some((major, minor, patch))
}

/// Finds the newest Python 3: the highest plain `3.x.y` listed by
/// `pyenv versions --bare`, run as `PYENV_VERSION=3.x.y python3`; without
/// pyenv, plain `python3`. The result is cached and its version printed once
/// (eprintln). Panics with a clear message when no Python 3 works: the
/// differential tests must fail, never silently skip.
pub fn python() -> &'static Python {
    static PY: OnceLock<Python> = OnceLock::new();
    PY.get_or_init(|| {
        let pyenv_version = Command::new("pyenv")
            .args(["versions", "--bare"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| parse_py3_version(l).map(|v| (v, l.trim().to_string())))
                    .max()
                    .map(|(_, name)| name)
            });
        let py = Python {
            program: "python3".to_string(),
            pyenv_version,
            version: String::new(),
        };
        let out = py.command().arg("--version").output().unwrap_or_else(|e| {
            panic!(
                "reference Python not found: cannot run `python3` ({e}). \
                 The differential tests need python3 (http.server); install it. \
                 Not skipping."
            )
        });
        if !out.status.success() {
            panic!(
                "reference Python not usable: `python3 --version` (PYENV_VERSION={:?}) failed: {}{}",
                py.pyenv_version,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if version.is_empty() {
            version = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        if !version.starts_with("Python 3.") {
            panic!("reference Python is not Python 3: {version:?}");
        }
        eprintln!(
            "reference: {version} (python3{})",
            py.pyenv_version
                .as_ref()
                .map(|v| format!(" with PYENV_VERSION={v}"))
                .unwrap_or_default()
        );
        Python { version, ..py }
    })
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

/// A running server child process (tinyserve or Python's http.server).
///
/// Killed on drop: SIGTERM, up to ~2 s grace, then SIGKILL, then reaped.
pub struct Server {
    /// The port parsed from the banner.
    pub port: u16,
    /// The banner line, e.g.
    /// `Serving HTTP on 127.0.0.1 port 43459 (http://127.0.0.1:43459/) ...`.
    pub banner: String,
    /// Human readable name used in messages (`tinyserve`, `python3 ...`).
    pub label: String,
    child: Child,
    stderr_lines: Arc<Mutex<Vec<String>>>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
}

/// Extracts the port from a `Serving HTTP on HOST port N (...) ...` banner.
pub fn parse_banner_port(line: &str) -> Option<u16> {
    let rest = line.split(" port ").nth(1)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

impl Server {
    /// Starts tinyserve as `tinyserve -b 127.0.0.1 ARGS... 0` and waits for
    /// its banner. `args` are e.g. `&["-d", dir, "-p", "HTTP/1.0"]`.
    pub fn start(args: &[&str]) -> Server {
        let mut cmd = Command::new(tinyserve_bin());
        cmd.arg("-b").arg("127.0.0.1").args(args).arg("0");
        Server::spawn(cmd, "tinyserve".to_string())
    }

    /// Like [`Server::start`] with OS-string arguments (non UTF-8 paths).
    pub fn start_os<S: AsRef<OsStr>>(args: &[S]) -> Server {
        let mut cmd = Command::new(tinyserve_bin());
        cmd.arg("-b").arg("127.0.0.1").args(args).arg("0");
        Server::spawn(cmd, "tinyserve".to_string())
    }

    /// Starts tinyserve serving `dir` with protocol `proto`
    /// (`"HTTP/1.0"` or `"HTTP/1.1"`).
    pub fn tinyserve(dir: &Path, proto: &str) -> Server {
        let mut cmd = Command::new(tinyserve_bin());
        cmd.arg("-b")
            .arg("127.0.0.1")
            .arg("-d")
            .arg(dir)
            .arg("-p")
            .arg(proto)
            .arg("0");
        Server::spawn(cmd, format!("tinyserve -p {proto}"))
    }

    /// Starts the reference: `python3 -u -m http.server -b 127.0.0.1 -d DIR
    /// -p PROTO 0` with the newest Python found by [`python`].
    pub fn python(dir: &Path, proto: &str) -> Server {
        let py = python();
        let mut cmd = py.command();
        cmd.args(["-u", "-m", "http.server", "-b", "127.0.0.1", "-d"])
            .arg(dir)
            .args(["-p", proto, "0"])
            // Keep the interpreter's behaviour independent of the caller's
            // environment (PYTHONPATH could shadow http.server).
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONSTARTUP")
            .current_dir(std::env::temp_dir());
        Server::spawn(cmd, format!("{} -p {proto}", py.version))
    }

    /// Spawns `cmd` (stdin null, stdout/stderr piped), waits up to
    /// [`BANNER_TIMEOUT`] for the banner on stdout and parses the port.
    /// Panics with the child's stderr if it exits or times out first.
    pub fn spawn(mut cmd: Command, label: String) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {label} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));

        // stderr is the access log, stdout starts with the banner: both are
        // drained for the child's lifetime.
        drain_lines(stderr, stderr_lines.clone(), None);
        let (tx, rx) = mpsc::channel::<String>();
        drain_lines(stdout, stdout_lines.clone(), Some(tx));

        let deadline = Instant::now() + BANNER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => {
                    if let Some(port) = parse_banner_port(&line) {
                        return Server {
                            port,
                            banner: line,
                            label,
                            child,
                            stderr_lines,
                            stdout_lines,
                        };
                    }
                    // Not the banner; keep waiting for it.
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    thread::sleep(Duration::from_millis(50)); // let stderr drain
                    panic!(
                        "{label} exited before printing its banner (status {status:?}).\nstdout: {:?}\nstderr:\n{}",
                        stdout_lines.lock().unwrap(),
                        stderr_lines.lock().unwrap().join("\n")
                    );
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                // The banner may still be in the pipe.
                if let Ok(line) = rx.try_recv()
                    && let Some(port) = parse_banner_port(&line)
                {
                    panic!("{label} printed banner {line:?} (port {port}) but exited: {status}");
                }
                panic!(
                    "{label} exited before printing its banner ({status}).\nstdout: {:?}\nstderr:\n{}",
                    stdout_lines.lock().unwrap(),
                    stderr_lines.lock().unwrap().join("\n")
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{label} printed no banner within {BANNER_TIMEOUT:?}.\nstdout: {:?}\nstderr:\n{}",
                    stdout_lines.lock().unwrap(),
                    stderr_lines.lock().unwrap().join("\n")
                );
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Process id of the child.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A snapshot of the stderr (access log) lines received so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr_lines.lock().unwrap().clone()
    }

    /// A snapshot of stdout lines (the banner first).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().unwrap().clone()
    }

    /// Polls the log until a line satisfies `pred` or `timeout` passes.
    /// The log is written after the response, so tests should use this
    /// instead of reading `log_lines()` right after a request.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr_lines.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `Some(status)` if the child has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits up to `grace`, then SIGKILL. Returns the status.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------------------
// Raw TCP clients
// ---------------------------------------------------------------------------

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Result of one raw exchange: everything read, and how reading ended.
#[derive(Debug, Clone)]
pub struct RawExchange {
    /// All bytes received.
    pub bytes: Vec<u8>,
    /// `Ok(())` on a clean EOF, otherwise what stopped the read
    /// (timeout, connection reset, ...). Bytes read before it are kept.
    pub end: Result<(), String>,
    /// Error while writing the request (e.g. the server closed early and the
    /// write failed with EPIPE/ECONNRESET); `None` if it all went out.
    pub write_error: Option<String>,
}

/// Writes `req`, half-closes the write side and reads until EOF
/// (deadline [`IO_TIMEOUT`]). Returns whatever was read; a reset or timeout
/// after some bytes is not an error here (use [`raw_request_opts`] to see how
/// it ended).
pub fn raw_request(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    raw_request_opts(addr, req, true, IO_TIMEOUT).bytes
}

/// Writes `req` (optionally half-closing afterwards) and reads until EOF or
/// until `timeout` has passed. The write happens on a separate thread while
/// this thread reads, so a server that answers and closes before reading a
/// huge request does not deadlock us, and its answer is read as soon as it
/// arrives (before a possible RST can discard it).
pub fn raw_request_opts(
    addr: SocketAddr,
    req: &[u8],
    half_close: bool,
    timeout: Duration,
) -> RawExchange {
    let stream = match connect(addr) {
        Ok(s) => s,
        Err(e) => {
            return RawExchange {
                bytes: Vec::new(),
                end: Err(format!("connect: {e}")),
                write_error: None,
            };
        }
    };
    let deadline = Instant::now() + timeout;
    let mut writer = stream.try_clone().expect("clone TcpStream");
    let req_owned = req.to_vec();
    let _ = writer.set_write_timeout(Some(timeout));
    let wthread = thread::spawn(move || {
        let r = writer.write_all(&req_owned).and_then(|_| writer.flush());
        if half_close {
            let _ = writer.shutdown(Shutdown::Write);
        }
        r.err().map(|e| e.to_string())
    });
    let (bytes, end) = read_to_eof(&stream, deadline);
    // Unblock a writer stuck on a full buffer.
    let _ = stream.shutdown(Shutdown::Both);
    let write_error = wthread
        .join()
        .unwrap_or_else(|_| Some("writer panicked".into()));
    RawExchange {
        bytes,
        end,
        write_error,
    }
}

/// Writes `req` WITHOUT half-closing and reads until the server closes or
/// the bytes received hold a complete final response (framed by length or
/// chunking; a body delimited by closing needs the close). `end` is
/// `Ok(())` either way. For servers that take a client's EOF to mean it has
/// left (tinyserve stops a CGI script then), where [`raw_request_opts`]
/// with a half-close would lose the answer.
pub fn raw_request_answered(addr: SocketAddr, req: &[u8], timeout: Duration) -> RawExchange {
    let mut c = match Conn::connect(addr) {
        Ok(c) => c,
        Err(e) => {
            return RawExchange {
                bytes: Vec::new(),
                end: Err(format!("connect: {e}")),
                write_error: None,
            };
        }
    };
    c.timeout = timeout;
    let deadline = Instant::now() + timeout;
    let mut writer = c.stream.try_clone().expect("clone TcpStream");
    let req_owned = req.to_vec();
    let _ = writer.set_write_timeout(Some(timeout));
    let wthread = thread::spawn(move || {
        writer
            .write_all(&req_owned)
            .and_then(|_| writer.flush())
            .err()
            .map(|e| e.to_string())
    });
    let head = is_head_request(req);
    let end = loop {
        let complete = Response::parse_stream(&c.buf, head).is_ok_and(|rs| {
            rs.last().is_some_and(|r| {
                !r.status.is_some_and(|s| (100..200).contains(&s))
                    && !matches!(r.expected_body_len(head), BodyLen::ToEof)
                    && r.status.is_some()
            })
        });
        if complete {
            break Ok(());
        }
        match c.fill(deadline) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = c.stream.shutdown(Shutdown::Both);
    let write_error = wthread
        .join()
        .unwrap_or_else(|_| Some("writer panicked".into()));
    RawExchange {
        bytes: std::mem::take(&mut c.buf),
        end,
        write_error,
    }
}

/// Reads until EOF or `deadline`.
pub fn read_to_eof(mut stream: &TcpStream, deadline: Instant) -> (Vec<u8>, Result<(), String>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, Err("timeout waiting for EOF".into()));
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (out, Err("timeout waiting for EOF".into()));
            }
            Err(e) => return (out, Err(format!("read error: {e}"))),
        }
    }
}

/// Writes `req` WITHOUT half-closing and reads exactly one response, framed by
/// its Content-Length (no body for HEAD, 1xx, 204, 304; read to EOF when
/// there is no Content-Length). Interim 1xx responses are skipped.
/// The connection is then dropped.
pub fn request_one(addr: SocketAddr, req: &[u8]) -> Result<Response, String> {
    let mut c = Conn::connect(addr).map_err(|e| format!("connect: {e}"))?;
    c.send(req).map_err(|e| format!("write: {e}"))?;
    c.read_final_response(is_head_request(req))
}

/// True if the first request line of `req` uses the HEAD method.
pub fn is_head_request(req: &[u8]) -> bool {
    let start = req
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(req.len());
    req[start..].starts_with(b"HEAD") && req.get(start + 4).is_some_and(|b| b.is_ascii_whitespace())
}

/// A client connection that can read several responses in a row (keep-alive,
/// pipelining). Bytes read past one response are kept for the next one.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
    /// Deadline applied to each read_* call.
    pub timeout: Duration,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        Ok(Conn {
            stream: connect(addr)?,
            buf: Vec::new(),
            eof: false,
            timeout: IO_TIMEOUT,
        })
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.set_write_timeout(Some(self.timeout))?;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Reads more bytes into the buffer. `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let mut tmp = [0u8; 16384];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err("timeout".into());
                }
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Reads one response (which may be an interim 1xx). `head` says the
    /// request was HEAD (so a final response has no body).
    pub fn read_response(&mut self, head: bool) -> Result<Response, String> {
        let deadline = Instant::now() + self.timeout;
        // Wait for enough bytes to decide the framing.
        loop {
            if self.buf.len() >= 5 && !self.buf.starts_with(b"HTTP/") {
                // Body-only (HTTP/0.9 style): everything up to EOF.
                while self.fill(deadline)? {}
                let body = std::mem::take(&mut self.buf);
                return Ok(Response::body_only(body));
            }
            if let Some(end) = find_head_end(&self.buf) {
                let (mut resp, head_len) =
                    Response::parse_head(&self.buf[..end.1]).map_err(|e| e.to_string())?;
                debug_assert_eq!(head_len, end.1);
                let body_len = resp.expected_body_len(head);
                match body_len {
                    BodyLen::Exactly(n) => {
                        while self.buf.len() < end.1 + n {
                            if !self.fill(deadline)? {
                                return Err(format!(
                                    "EOF after {} of {} body bytes",
                                    self.buf.len() - end.1,
                                    n
                                ));
                            }
                        }
                        resp.body = self.buf[end.1..end.1 + n].to_vec();
                        self.buf.drain(..end.1 + n);
                    }
                    BodyLen::Chunked => loop {
                        if let Some((body, used)) = dechunk(&self.buf[end.1..])? {
                            resp.body = body;
                            self.buf.drain(..end.1 + used);
                            break;
                        }
                        if !self.fill(deadline)? {
                            return Err(format!(
                                "EOF inside a chunked body: {}",
                                escape_bytes(&self.buf[end.1..], 200)
                            ));
                        }
                    },
                    BodyLen::ToEof => {
                        while self.fill(deadline)? {}
                        resp.body = self.buf[end.1..].to_vec();
                        self.buf.clear();
                    }
                }
                return Ok(resp);
            }
            if !self.fill(deadline)? {
                if self.buf.is_empty() {
                    return Err("EOF before any response".into());
                }
                if !self.buf.starts_with(b"HTTP/") {
                    return Ok(Response::body_only(std::mem::take(&mut self.buf)));
                }
                return Err(format!(
                    "EOF inside response head: {}",
                    escape_bytes(&self.buf, 200)
                ));
            }
        }
    }

    /// Reads responses until a final (non-1xx) one and returns it.
    pub fn read_final_response(&mut self, head: bool) -> Result<Response, String> {
        loop {
            let r = self.read_response(head)?;
            if !r.status.is_some_and(|s| (100..200).contains(&s)) {
                return Ok(r);
            }
        }
    }

    /// Waits up to `timeout` for the server to close the connection.
    /// `Ok(true)`: EOF seen (any unread bytes stay buffered);
    /// `Ok(false)`: still open after `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(false) => return Ok(true),
                Ok(true) => {}
                Err(e) if e == "timeout" => return Ok(false),
                Err(e) if e.contains("reset") => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }

    /// Bytes received but not consumed by a read_* call.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Finds the end of a response head: returns (index of the blank line,
/// index just past it). Accepts CRLFCRLF and bare LFLF.
fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = b
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

// ---------------------------------------------------------------------------
// Response parsing
// ---------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The raw status line without CRLF; `None` for an HTTP/0.9 style answer
    /// (no status line, no headers, body only).
    pub status_line: Option<String>,
    /// e.g. `HTTP/1.0`.
    pub version: Option<String>,
    /// e.g. 404.
    pub status: Option<u16>,
    /// e.g. `File not found` (may be empty).
    pub reason: Option<String>,
    /// Headers in wire order, name case preserved, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    Exactly(usize),
    /// `Transfer-Encoding: chunked`: decoded with [`dechunk`].
    Chunked,
    ToEof,
}

impl Response {
    /// A response without a status line (HTTP/0.9 style): all bytes are body.
    pub fn body_only(body: Vec<u8>) -> Response {
        Response {
            status_line: None,
            version: None,
            status: None,
            reason: None,
            headers: Vec::new(),
            body,
        }
    }

    /// True for an HTTP/0.9 style answer (no status line).
    pub fn is_body_only(&self) -> bool {
        self.status_line.is_none()
    }

    /// First header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of headers named `name` (case-insensitive), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Content-Length parsed, if present and numeric.
    pub fn content_length(&self) -> Option<usize> {
        self.header("Content-Length")
            .and_then(|v| v.trim().parse().ok())
    }

    /// True if the last transfer coding named by `Transfer-Encoding` is
    /// `chunked` (the body is then delimited by the chunks, RFC 9112 6.3).
    pub fn is_chunked(&self) -> bool {
        self.headers_all("Transfer-Encoding")
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty())
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    }

    /// How the body of this response is delimited, given whether the request
    /// was HEAD.
    pub fn expected_body_len(&self, head_request: bool) -> BodyLen {
        let s = self.status.unwrap_or(200);
        if (100..200).contains(&s) || s == 204 || s == 304 || head_request {
            return BodyLen::Exactly(0);
        }
        if self.is_chunked() {
            return BodyLen::Chunked;
        }
        match self.content_length() {
            Some(n) => BodyLen::Exactly(n),
            None => BodyLen::ToEof,
        }
    }

    /// Parses a response head (status line + headers + blank line) at the
    /// start of `b`. Returns the response (empty body) and the head length.
    pub fn parse_head(b: &[u8]) -> Result<(Response, usize), String> {
        let (_, end) = find_head_end(b).ok_or_else(|| "incomplete response head".to_string())?;
        let head = &b[..end];
        let mut lines = head
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().unwrap_or_default();
        let sl = String::from_utf8_lossy(status_line).into_owned();
        let mut parts = sl.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        if !version.starts_with("HTTP/") {
            return Err(format!("bad status line {sl:?}"));
        }
        let code = parts.next().unwrap_or_default();
        let status: u16 = code
            .parse()
            .map_err(|_| format!("bad status code in {sl:?}"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let s = String::from_utf8_lossy(l);
            match s.split_once(':') {
                Some((n, v)) => headers.push((n.to_string(), v.trim().to_string())),
                None => headers.push((s.into_owned(), String::new())),
            }
        }
        Ok((
            Response {
                status_line: Some(sl.clone()),
                version: Some(version),
                status: Some(status),
                reason: Some(reason),
                headers,
                body: Vec::new(),
            },
            end,
        ))
    }

    /// Parses ONE response from complete bytes (e.g. from [`raw_request`]):
    /// the head, then the body by Content-Length, or to the end; bytes not
    /// starting with `HTTP/` are a body-only (HTTP/0.9) answer.
    pub fn parse(b: &[u8]) -> Result<Response, String> {
        Ok(Response::parse_stream(b, false)?
            .into_iter()
            .next()
            .ok_or("no response (empty)")?)
    }

    /// Parses all responses in `b` (interim 100 Continue, pipelined
    /// responses, ...). `head_request` applies to every final response.
    /// An empty input gives an empty Vec. A body cut short by EOF is an error.
    pub fn parse_stream(b: &[u8], head_request: bool) -> Result<Vec<Response>, String> {
        let mut out = Vec::new();
        let mut rest = b;
        while !rest.is_empty() {
            if !rest.starts_with(b"HTTP/") {
                out.push(Response::body_only(rest.to_vec()));
                break;
            }
            let (mut r, n) = Response::parse_head(rest)?;
            rest = &rest[n..];
            match r.expected_body_len(head_request) {
                BodyLen::Exactly(len) => {
                    if rest.len() < len {
                        return Err(format!(
                            "body cut short: Content-Length {len}, got {} bytes (status {:?})",
                            rest.len(),
                            r.status_line
                        ));
                    }
                    r.body = rest[..len].to_vec();
                    rest = &rest[len..];
                }
                BodyLen::Chunked => match dechunk(rest)? {
                    Some((body, used)) => {
                        r.body = body;
                        rest = &rest[used..];
                    }
                    None => {
                        return Err(format!(
                            "chunked body cut short after {} bytes (status {:?})",
                            rest.len(),
                            r.status_line
                        ));
                    }
                },
                BodyLen::ToEof => {
                    r.body = rest.to_vec();
                    rest = &[];
                }
            }
            out.push(r);
        }
        Ok(out)
    }

    /// A short human readable rendering: status line, headers, and the first
    /// `max_body` bytes of the body (escaped).
    pub fn summary(&self, max_body: usize) -> String {
        let mut s = String::new();
        match &self.status_line {
            Some(l) => s.push_str(l),
            None => s.push_str("<no status line>"),
        }
        for (n, v) in &self.headers {
            s.push_str(&format!(" | {n}: {v}"));
        }
        s.push_str(&format!(
            " || body[{}]: {}",
            self.body.len(),
            escape_bytes(&self.body, max_body)
        ));
        s
    }
}

/// Decodes a chunked body (RFC 9112 7.1) at the start of `b`.
///
/// `Ok(Some((body, used)))` once the last chunk and the trailer section are
/// complete (`used` bytes of `b` taken, so pipelined bytes after it stay);
/// `Ok(None)` when more bytes are needed; `Err` for a malformed encoding
/// (size not hex, data not followed by CRLF, ...). Chunk extensions are
/// skipped, trailers dropped. Strict about CRLF: tinyserve must send it.
pub fn dechunk(b: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    let line_at = |pos: usize| -> Option<(usize, usize)> {
        // (end of line content, start of next line)
        b.get(pos..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| (pos + i, pos + i + 2))
    };
    loop {
        let Some((line_end, next)) = line_at(pos) else {
            if b.len() - pos > 1024 {
                return Err(format!(
                    "chunk size line too long: {}",
                    escape_bytes(&b[pos..], 60)
                ));
            }
            return Ok(None);
        };
        let line = &b[pos..line_end];
        let size_part = line.split(|&c| c == b';').next().unwrap_or_default();
        let size_str = std::str::from_utf8(size_part)
            .map_err(|_| format!("chunk size not ASCII: {}", escape_bytes(line, 60)))?
            .trim_matches([' ', '\t']);
        if size_str.is_empty() || !size_str.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("bad chunk size line {:?}", escape_bytes(line, 60)));
        }
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|e| format!("chunk size {size_str:?}: {e}"))?;
        pos = next;
        if size == 0 {
            // Trailer section: header lines up to an empty line.
            loop {
                let Some((line_end, next)) = line_at(pos) else {
                    return Ok(None);
                };
                let empty = line_end == pos;
                pos = next;
                if empty {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if b.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&b[pos..pos + size]);
        pos += size;
        if &b[pos..pos + 2] != b"\r\n" {
            return Err(format!(
                "chunk of {size} bytes not followed by CRLF: {}",
                escape_bytes(&b[pos..], 40)
            ));
        }
        pos += 2;
    }
}

/// Renders bytes for messages: printable ASCII as is, others escaped, cut to
/// `max` bytes (with the total length noted).
pub fn escape_bytes(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &c in b.iter().take(max) {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > max {
        s.push_str(&format!("...(+{} bytes)", b.len() - max));
    }
    s
}

// ---------------------------------------------------------------------------
// Python's error page
// ---------------------------------------------------------------------------

/// The body Python's `send_error(code, message, explain)` produces
/// (`DEFAULT_ERROR_MESSAGE`, message and explain HTML-escaped with
/// quote=False). E.g. `python_error_body(404, "File not found",
/// "Nothing matches the given URI")`.
pub fn python_error_body(code: u16, message: &str, explain: &str) -> String {
    format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        \
         <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        \
         <p>Error code: {code}</p>\n        <p>Message: {}.</p>\n        \
         <p>Error code explanation: {code} - {}.</p>\n    </body>\n</html>\n",
        html_escape(message),
        html_escape(explain)
    )
}

/// `html.escape(s, quote=False)`: escapes `&`, `<`, `>`.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Extracts (code, message) from a Python error page body, unescaping the
/// message (`&amp;`, `&lt;`, `&gt;`). `None` if it is not an error page.
pub fn parse_error_body(body: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(body);
    let code = text
        .split("<p>Error code: ")
        .nth(1)?
        .split("</p>")
        .next()?
        .trim()
        .parse()
        .ok()?;
    let msg = text.split("<p>Message: ").nth(1)?.split(".</p>").next()?;
    let msg = msg
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    Some((code, msg))
}

// ---------------------------------------------------------------------------
// Fixture document root
// ---------------------------------------------------------------------------

/// Modification time given to every fixture file:
/// 2021-03-04 05:06:07 UTC.
pub const FIXTURE_MTIME: u64 = 1_614_834_367;
/// [`FIXTURE_MTIME`] as an HTTP date (the expected Last-Modified).
pub const FIXTURE_MTIME_HTTP: &str = "Thu, 04 Mar 2021 05:06:07 GMT";

/// Files at the root of the fixture tree: (name, contents). Covers the
/// extensions the brief asks for plus more common ones, upper case
/// extensions and extensions known only through /etc/mime.types.
pub const ROOT_FILES: &[(&str, &[u8])] = &[
    ("a.html", b"<!DOCTYPE html><title>a</title><p>a.html</p>\n"),
    ("b.htm", b"<p>b.htm</p>\n"),
    ("a.txt", b"contents of a.txt\n"),
    ("script.js", b"console.log('js');\n"),
    ("module.mjs", b"export const x = 1;\n"),
    ("style.css", b"body { color: red; }\n"),
    ("data.json", b"{\"k\": [1, 2, 3]}\n"),
    ("mod.wasm", b"\x00asm\x01\x00\x00\x00"),
    (
        "img.png",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89",
    ),
    ("img.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"),
    ("file.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("archive.tar.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03tar"),
    ("thing.xyz", b"xyz: listed in /etc/mime.types as chemical/x-xyz\n"),
    ("thing.qqq", b"qqq: unknown everywhere\n"),
    ("noext", b"file without extension\n"),
    ("UPPER.TXT", b"upper case extension\n"),
    ("Mixed.Html", b"<p>mixed case extension</p>\n"),
    ("UPPER.GZ", b"\x1f\x8b upper gz\n"),
    ("old.Z", b"compress .Z\n"),
    ("doc.md", b"# markdown\n"),
    ("doc.xml", b"<?xml version=\"1.0\"?><x/>\n"),
    ("doc.pdf", b"%PDF-1.4\n"),
    ("photo.jpg", b"\xff\xd8\xff\xe0jpeg"),
    ("favicon.ico", b"\x00\x00\x01\x00ico"),
    ("pic.webp", b"RIFF\x00\x00\x00\x00WEBP"),
    ("font.woff2", b"wOF2"),
    ("table.csv", b"a,b\n1,2\n"),
    ("arch.zip", b"PK\x03\x04"),
    ("arch.tgz", b"\x1f\x8b tgz"),
    ("arch.bz2", b"BZh9"),
    ("arch.xz", b"\xfd7zXZ\x00"),
    ("prog.py", b"print('hi')\n"),
    ("prog.sh", b"echo hi\n"),
    ("prog.c", b"int main(void){return 0;}\n"),
    ("prog.rs", b"fn main() {}\n"),
    ("conf.toml", b"[a]\nb = 1\n"),
    ("empty.txt", b""),
    ("trailingdot.", b"name ends with a dot\n"),
    (".hidden", b"dotfile\n"),
];

/// Size of `big.bin` at the root (deterministic pattern, see [`big_bin`]).
pub const BIG_BIN_LEN: usize = 300_000;

/// Contents of `big.bin`.
pub fn big_bin() -> Vec<u8> {
    (0..BIG_BIN_LEN).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A temporary document root; removed (recursively) on drop.
///
/// Layout (all files have mtime [`FIXTURE_MTIME`]; everything is world
/// readable except `list/secret.txt`):
///
/// ```text
/// ROOT/                      no index: GET / is a listing
///   <ROOT_FILES>             one file per extension, see ROOT_FILES
///   big.bin                  300 000 bytes
///   withindex/index.html     index.html wins over index.htm
///   withindex/index.htm
///   withindex/other.txt
///   htmonly/index.htm        only index.htm
///   idxdir/index.html/x.txt  a DIRECTORY named index.html (not an index)
///   list/                    no index: listing with awkward names
///     a&b.txt  <x>.txt  sp ace.txt  pct%41.txt  ünï.txt  q"uote'.txt
///     a\b.txt (backslash)  bad\xff.txt (invalid UTF-8)
///     alpha.txt  Beta.txt  gamma.TXT  Zeta.txt  _under.txt  0num.txt
///     sub/ (with inner.txt)  empty/ (empty dir)
///     link.txt -> ../a.txt   linkdir -> sub   dangling -> does-not-exist
///     secret.txt (mode 000; tests run as root, so it is still readable)
///   dir with space/f.txt
/// ```
pub struct Fixture {
    pub root: PathBuf,
}

impl Fixture {
    /// `root.join(rel)`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The root as &str (it is always ASCII).
    pub fn root_str(&self) -> &str {
        self.root.to_str().expect("fixture root is ASCII")
    }

    /// Reads a file addressed by raw relative path bytes.
    pub fn read_bytes_path(&self, rel: &[u8]) -> io::Result<Vec<u8>> {
        fs::read(self.root.join(OsStr::from_bytes(rel)))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::env::var_os("TINYSERVE_KEEP_FIXTURE").is_some() {
            eprintln!("keeping fixture tree {}", self.root.display());
            return;
        }
        let _ = fs::set_permissions(
            self.root.join("list/secret.txt"),
            fs::Permissions::from_mode(0o644),
        );
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn write_file(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(FIXTURE_MTIME))
        .unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn make_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Builds a fresh fixture tree under `std::env::temp_dir()` with a unique
/// name (`tinyserve-fixture-PID-N-NANOS`). See [`Fixture`] for the layout.
pub fn fixture_tree() -> Fixture {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "tinyserve-fixture-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    );
    let root = std::env::temp_dir().join(name);
    make_dir(&root);
    let fx = Fixture { root: root.clone() };

    for (name, contents) in ROOT_FILES {
        write_file(&root.join(name), contents);
    }
    write_file(&root.join("big.bin"), &big_bin());

    let d = root.join("withindex");
    make_dir(&d);
    write_file(&d.join("index.html"), b"<p>withindex/index.html</p>\n");
    write_file(
        &d.join("index.htm"),
        b"<p>withindex/index.htm (must lose)</p>\n",
    );
    write_file(&d.join("other.txt"), b"withindex/other.txt\n");

    let d = root.join("htmonly");
    make_dir(&d);
    write_file(&d.join("index.htm"), b"<p>htmonly/index.htm</p>\n");

    let d = root.join("idxdir/index.html");
    make_dir(&root.join("idxdir"));
    make_dir(&d);
    write_file(&d.join("x.txt"), b"idxdir/index.html/x.txt\n");

    let d = root.join("dir with space");
    make_dir(&d);
    write_file(&d.join("f.txt"), b"dir with space/f.txt\n");

    let l = root.join("list");
    make_dir(&l);
    let names: &[&[u8]] = &[
        b"a&b.txt",
        b"<x>.txt",
        b"sp ace.txt",
        b"pct%41.txt",
        "ünï.txt".as_bytes(),
        b"q\"uote'.txt",
        b"a\\b.txt",
        b"bad\xff.txt",
        b"alpha.txt",
        b"Beta.txt",
        b"gamma.TXT",
        b"Zeta.txt",
        b"_under.txt",
        b"0num.txt",
    ];
    for n in names {
        let p = l.join(OsStr::from_bytes(n));
        let mut contents = b"list/".to_vec();
        contents.extend_from_slice(n);
        contents.push(b'\n');
        write_file(&p, &contents);
    }
    make_dir(&l.join("sub"));
    write_file(&l.join("sub/inner.txt"), b"list/sub/inner.txt\n");
    make_dir(&l.join("empty"));
    symlink("../a.txt", l.join("link.txt")).unwrap();
    symlink("sub", l.join("linkdir")).unwrap();
    symlink("does-not-exist", l.join("dangling")).unwrap();
    let secret = l.join("secret.txt");
    write_file(&secret, b"secret (mode 000)\n");
    // Note: the tests run as root, so this file stays readable anyway.
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();

    fx
}

/// `OsString` from raw bytes (for names that are not UTF-8).
pub fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}

// ---------------------------------------------------------------------------
// CGI helpers: a world-readable tree under /tmp, servers with --cgi, /proc
// ---------------------------------------------------------------------------

/// A throw-away directory tree for CGI tests, removed on drop (kept with
/// `TINYSERVE_KEEP_FIXTURE=1`).
///
/// It lives under `/tmp` (never under `/root`): run as root, both
/// tinyserve and Python's CGI server run scripts as `nobody`, who must be
/// able to enter every directory on the way and read and execute the
/// scripts. Directories are 0755, files 0644, scripts 0755; the root path is
/// canonical (no symlinks), so it equals the server's idea of the document
/// root and `PATH_TRANSLATED` compares as text.
pub struct TempTree {
    pub root: PathBuf,
}

impl TempTree {
    /// Creates `/tmp/tinyserve-PREFIX-PID-N-NANOS` (mode 0755).
    pub fn new(prefix: &str) -> TempTree {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tinyserve-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let tmp = Path::new("/tmp");
        let tmp_mode = fs::metadata(tmp)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert!(
            tmp_mode & 0o001 != 0,
            "/tmp must be world-executable for CGI tests (mode {tmp_mode:o})"
        );
        let root = tmp.join(name);
        make_dir(&root);
        let root = root.canonicalize().expect("canonicalize temp tree");
        TempTree { root }
    }

    /// `root.join(rel)`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The root as &str (always ASCII).
    pub fn root_str(&self) -> &str {
        self.root.to_str().expect("temp tree root is ASCII")
    }

    /// `mkdir -p` with every created directory 0755.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p.push(part);
            if !p.is_dir() {
                make_dir(&p);
            }
        }
        p
    }

    /// Writes a file (0644), creating its parent directories.
    pub fn file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        self.write_mode(rel, contents, 0o644)
    }

    /// Writes an executable script (0755), creating its parent directories.
    pub fn script(&self, rel: &str, contents: &str) -> PathBuf {
        self.write_mode(rel, contents.as_bytes(), 0o755)
    }

    /// Writes a file with `mode`, creating its parent directories.
    pub fn write_mode(&self, rel: &str, contents: &[u8], mode: u32) -> PathBuf {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.dir(parent);
        }
        let p = self.root.join(rel);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if std::env::var_os("TINYSERVE_KEEP_FIXTURE").is_some() {
            eprintln!("keeping temp tree {}", self.root.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Names of the CGI meta-variables (RFC 3875 section 4.1) that Python's
/// `CGIHTTPRequestHandler` sets.
pub const PYTHON_CGI_VARS: &[&str] = &[
    "AUTH_TYPE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "HTTP_ACCEPT",
    "HTTP_COOKIE",
    "HTTP_REFERER",
    "HTTP_USER_AGENT",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
];

/// Removes from `cmd`'s environment every variable a CGI server sets for
/// its scripts (the [`PYTHON_CGI_VARS`], any `HTTP_*`, `REMOTE_IDENT`), so
/// that what a script sees comes from the request, not from the test
/// runner's environment (both servers pass their own environment on).
pub fn scrub_cgi_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("HTTP_") || k == "REMOTE_IDENT" || PYTHON_CGI_VARS.contains(&k) {
            cmd.env_remove(k);
        }
    }
}

impl Server {
    /// Starts `tinyserve -b 127.0.0.1 -d DIR -p PROTO EXTRA... 0` with the
    /// CGI variables scrubbed from its environment (see [`scrub_cgi_env`]).
    /// E.g. `Server::tinyserve_with(dir, "HTTP/1.1", &["--cgi"])`.
    pub fn tinyserve_with(dir: &Path, proto: &str, extra: &[&str]) -> Server {
        let mut cmd = Command::new(tinyserve_bin());
        cmd.arg("-b")
            .arg("127.0.0.1")
            .arg("-d")
            .arg(dir)
            .arg("-p")
            .arg(proto)
            .args(extra)
            .arg("0");
        scrub_cgi_env(&mut cmd);
        let mut label = format!("tinyserve -p {proto}");
        for a in extra {
            label.push(' ');
            label.push_str(a);
        }
        Server::spawn(cmd, label)
    }

    /// The reference CGI server: `python3 -u -m http.server --cgi -b
    /// 127.0.0.1 -d DIR -p PROTO 0` (newest Python, see [`python`]), with
    /// the CGI variables scrubbed from its environment.
    pub fn python_cgi(dir: &Path, proto: &str) -> Server {
        let py = python();
        let mut cmd = py.command();
        cmd.args(["-u", "-m", "http.server", "--cgi", "-b", "127.0.0.1", "-d"])
            .arg(dir)
            .args(["-p", proto, "0"])
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONSTARTUP")
            .current_dir(std::env::temp_dir());
        scrub_cgi_env(&mut cmd);
        Server::spawn(cmd, format!("{} --cgi -p {proto}", py.version))
    }
}

/// State letter (`R`, `S`, `Z`, ...) and parent pid of a process, from
/// `/proc/PID/stat`; `None` if there is no such process.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Pids of the processes whose parent is `ppid` (zombies included), found
/// by scanning `/proc`.
pub fn child_pids(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if proc_stat(pid).is_some_and(|(_, p)| p == ppid) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// A `/proc/PID/status` field in kB (`VmHWM`, `VmRSS`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True when the process `pid` that was a child of `parent` is gone: no
/// `/proc/PID` at all, or the pid now belongs to some other process. A
/// zombie still waiting for `parent` to reap it is NOT gone.
pub fn process_gone(pid: u32, parent: u32) -> bool {
    match proc_stat(pid) {
        None => true,
        Some((_, ppid)) => ppid != parent,
    }
}

/// Polls `cond` every 10 ms until it holds (true) or `timeout` passes
/// (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `from` line by line on a thread of its own, until EOF, into
/// `lines` (line endings trimmed), also sending each line to `tx` if given.
fn drain_lines(
    from: impl std::io::Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        let mut r = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    lines.lock().unwrap().push(line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }
        }
    });
}
