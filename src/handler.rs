//! Handlers: your code, answering requests on the server's one loop.
//!
//! This is Python's `BaseHTTPRequestHandler` in Rust. A [`Handler`]'s
//! methods mirror `do_GET`, `do_POST`...; each gets an [`Exchange`], which
//! is what `self` is in a Python handler: the request (`command`, `path`,
//! `headers`, `client_address`...) and the means to answer it
//! (`send_response`, `send_header`, `end_headers`, `write` for `wfile`,
//! `send_error`).
//!
//! Handlers run on the event loop, so they must not block: a handler that
//! has slow work to do hands it to the server's worker threads with
//! [`Exchange::defer`] (or the whole server runs every handler on workers,
//! as `ThreadingHTTPServer` does: [`crate::ServerBuilder::threaded`]). A
//! request body is read with [`Exchange::read_body`] (whole, up to a limit)
//! or [`Exchange::read_body_with`] (streamed to a [`BodyHandler`]); a large
//! answer is streamed from a [`BodySource`] or sent from a file.
//!
//! ```
//! use tinyserve::{Exchange, Handler};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn do_get(&self, r: &mut Exchange) {
//!         r.send_response(200);
//!         r.send_header("Content-Type", "text/plain");
//!         r.end_headers();
//!         r.write(b"Hello, world!\n");
//!     }
//! }
//! ```

use crate::proto::request::{self, BodyFraming, RequestLine, Version};
use crate::proto::response::{Head, latin1, push_decimal, push_error_page, status_has_body};
use crate::proto::status;
use std::borrow::Cow;
use std::fs::File;
use std::net::SocketAddr;

/// What answers requests. Every method has a default: `handle` dispatches
/// on the method to `do_get`, `do_head`, `do_post`... (any other method,
/// `SPAM` say, to [`Handler::do_method`]); each of those answers Python's
/// `501 Unsupported method ('X')`; `do_head` answers as `do_get` does,
/// without the body (the server drops it).
///
/// A closure `Fn(&mut Exchange)` is a handler too: it gets every request.
pub trait Handler {
    /// Answers one request. Override it to route every method yourself.
    fn handle(&self, r: &mut Exchange) {
        match r.command_bytes() {
            b"GET" => self.do_get(r),
            b"HEAD" => self.do_head(r),
            b"POST" => self.do_post(r),
            b"PUT" => self.do_put(r),
            b"DELETE" => self.do_delete(r),
            b"OPTIONS" => self.do_options(r),
            b"PATCH" => self.do_patch(r),
            _ => self.do_method(r),
        }
    }

    fn do_get(&self, r: &mut Exchange) {
        r.unsupported();
    }

    /// By default, the answer to GET without its body.
    fn do_head(&self, r: &mut Exchange) {
        self.do_get(r);
    }

    fn do_post(&self, r: &mut Exchange) {
        r.unsupported();
    }

    fn do_put(&self, r: &mut Exchange) {
        r.unsupported();
    }

    fn do_delete(&self, r: &mut Exchange) {
        r.unsupported();
    }

    fn do_options(&self, r: &mut Exchange) {
        r.unsupported();
    }

    fn do_patch(&self, r: &mut Exchange) {
        r.unsupported();
    }

    /// Any other method (`r.command()` says which).
    fn do_method(&self, r: &mut Exchange) {
        r.unsupported();
    }
}

impl<F: Fn(&mut Exchange)> Handler for F {
    fn handle(&self, r: &mut Exchange) {
        self(r)
    }
}

/// The protocol version the server answers with (Python's
/// `protocol_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Python's default: every connection closes after one answer.
    Http10,
    /// Keep-alive, pipelining, chunked bodies.
    Http11,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
        }
    }
}

/// When `100 Continue` is sent to a client that asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectContinue {
    /// Before the handler runs, for every request that asks: Python's way
    /// (the command line keeps it).
    Always,
    /// Only when the handler reads the body (RFC 9110 10.1.1): a request
    /// refused on its head never has its body sent.
    WhenRead,
}

/// What is fixed for the life of a server and shapes every answer.
#[derive(Debug, Clone)]
pub struct Config {
    pub protocol: Protocol,
    /// The `Server` header (Python's `version_string()`).
    pub server: std::sync::Arc<str>,
    /// Header lines added to every response (`Name: value\r\n`...).
    pub extra_headers: std::sync::Arc<[u8]>,
    pub expect_continue: ExpectContinue,
    /// Answer a two-word request line (`GET /`) without a status line, as
    /// Python does; otherwise it is a 400.
    pub http09: bool,
    /// Refuse (400) an HTTP/1.1 request without `Host`, as RFC 9112 3.2
    /// requires; Python answers it.
    pub require_host: bool,
    /// The largest body [`Exchange::read_body`] takes whole, unless the
    /// handler gives its own limit.
    pub max_body: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            protocol: Protocol::Http11,
            server: crate::proto::response::SERVER.into(),
            extra_headers: std::sync::Arc::from(&b""[..]),
            expect_continue: ExpectContinue::WhenRead,
            http09: false,
            require_host: true,
            max_body: 1 << 20,
        }
    }
}

/// A parsed request, as the server hands it to an exchange: slices of the
/// bytes received, nothing copied.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a> {
    pub peer: SocketAddr,
    /// The request line without its line ending.
    pub raw_line: &'a [u8],
    pub line: RequestLine<'a>,
    pub headers: &'a [httparse::Header<'a>],
    pub framing: BodyFraming,
}

/// The headers of a request, in order, as they came: names compared
/// without case, repetitions kept (Python's `self.headers`).
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    list: &'a [httparse::Header<'a>],
}

impl<'a> Headers<'a> {
    /// The first value of `name` (case-insensitive), as Python's
    /// `headers.get(name)`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.get_bytes(name).map(lossy)
    }

    /// The first value of `name`, as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&'a [u8]> {
        request::header(self.list, name)
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let list = self.list;
        list.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| lossy(h.value))
    }

    /// Every `(name, value)` in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let list = self.list;
        list.iter().map(|h| (h.name, lossy(h.value)))
    }

    /// Every `(name, value)` as bytes, in the order they came.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let list = self.list;
        list.iter().map(|h| (h.name.as_bytes(), h.value))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Header values are bytes; shown as text when they are UTF-8 (almost
/// always), else as nothing rather than a copy.
fn lossy(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

/// A response body made as the socket drains, with backpressure: the
/// server asks for more only when the client has taken what came before.
/// Sent chunked to HTTP/1.1 clients (unless the handler set
/// `Content-Length`), delimited by closing the connection for HTTP/1.0.
pub trait BodySource {
    /// Appends up to about `max` bytes of the body to `buf`; returns false
    /// once the body is complete (what was appended with it counts).
    fn fill(&mut self, buf: &mut Vec<u8>, max: usize) -> bool;
}

/// A request body taken as it arrives, a piece at a time, so a large
/// upload is never held in memory: the server reads from the client only
/// as fast as `data` returns.
pub trait BodyHandler {
    /// The next piece of the body (chunked bodies decoded). An error is
    /// answered with its status (413 for too large, say) and the
    /// connection closed.
    fn data(&mut self, piece: &[u8]) -> Result<(), BodyError>;

    /// The whole body has come: answer the request.
    fn end(self: Box<Self>, r: &mut Exchange);
}

/// Why a request body was refused while it came: the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub status: u16,
    pub message: String,
}

impl BodyError {
    pub fn new(status: u16, message: impl Into<String>) -> BodyError {
        BodyError {
            status,
            message: message.into(),
        }
    }

    /// 413, the body is larger than the handler takes.
    pub fn too_large() -> BodyError {
        BodyError::new(413, "Request body too large")
    }
}

/// What a [`Exchange::poll`] function says each time it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Not yet: call again on the next turn of the loop.
    Pending,
    /// The function has answered (or set what follows).
    Ready,
}

/// A CGI script to run; its output becomes the answer (RFC 3875).
#[derive(Debug)]
pub struct CgiCommand {
    pub program: std::path::PathBuf,
    /// Run `.py` scripts with `python3 -u` (as Python's server does).
    pub python: bool,
    pub argument: Option<std::ffi::OsString>,
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    /// Pass the request body to the script's standard input.
    pub with_body: bool,
}

/// What `read_body` calls once the body has come.
pub(crate) type BodyThen = Box<dyn FnOnce(&mut Exchange, Vec<u8>)>;

/// What the handler asked to happen after it returns.
pub(crate) enum Next {
    /// The answer is complete as written.
    Nothing,
    /// Send `len` bytes of the file from `offset` (with `sendfile`).
    File {
        file: std::rc::Rc<File>,
        offset: u64,
        len: u64,
    },
    /// As `File`, from a worker thread (a `File` moves between threads, an
    /// `Rc` does not).
    OwnedFile {
        file: File,
        offset: u64,
        len: u64,
    },
    Stream(Box<dyn BodySource + Send>),
    /// A stream that cannot leave the loop's thread (a shared listing).
    LocalStream(Box<dyn BodySource>),
    ReadBody {
        limit: u64,
        then: BodyThen,
    },
    ReadBodyWith(Box<dyn BodyHandler>),
    Poll(Box<dyn FnMut(&mut Exchange) -> Poll>),
    Defer(Box<dyn FnOnce(&mut Exchange) + Send>),
    Cgi(Box<CgiCommand>),
}

/// How the head being written stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadState {
    /// `send_response` has not been called.
    None,
    /// Headers are being added; the head starts at `start` in `out`.
    Open,
    /// `end_headers` was called and the head is written whole: what the
    /// handler writes now goes straight out (or nowhere: no body).
    Sent,
    /// `end_headers` was called but the length is not known yet: the body
    /// is held until the handler returns, then `Content-Length` (or
    /// chunking, for a stream) goes in front of it.
    Held,
}

/// One request and its answer: what `self` is in a Python handler.
///
/// Request side, as Python names them: [`command`](Exchange::command),
/// [`path`](Exchange::path) (the raw target), [`request_version`],
/// [`headers`](Exchange::headers), [`client_address`], [`requestline`];
/// plus [`url_path`](Exchange::url_path) and [`query`](Exchange::query)
/// split out and [`decoded_path`](Exchange::decoded_path).
///
/// Answer side: [`send_response`](Exchange::send_response),
/// [`send_header`](Exchange::send_header), [`end_headers`], then
/// [`write`](Exchange::write) (Python's `wfile.write`); or
/// [`send_error`](Exchange::send_error) for Python's error page. The server
/// adds `Server` and `Date` (in `send_response`, as Python does), chooses
/// `Content-Length` or chunking when the handler did not say, drops bodies
/// of HEAD answers, and keeps the connection whenever the framing allows.
///
/// [`request_version`]: Exchange::request_version
/// [`client_address`]: Exchange::client_address
/// [`requestline`]: Exchange::requestline
/// [`end_headers`]: Exchange::end_headers
pub struct Exchange<'a> {
    req: Req<'a>,
    out: &'a mut Vec<u8>,
    held: &'a mut Vec<u8>,
    cfg: &'a Config,
    date: &'a [u8],
    now: u64,
    head: HeadState,
    head_start: usize,
    status: u16,
    /// The handler said `Content-Length` (and what), or `Transfer-Encoding`.
    length: Option<u64>,
    chunked_by_handler: bool,
    /// The handler sent a `Connection` header: we add none.
    connection_by_handler: bool,
    /// The connection ends after this answer (Python's `close_connection`).
    close: bool,
    /// What Python's `send_error` logs before the request line.
    error: Option<String>,
    next: Next,
    /// The body, already read (on a worker thread, where the loop read it
    /// before the handler ran).
    pre_read: Option<Vec<u8>>,
    /// The server's caches, on the loop only.
    pub(crate) services: Option<&'a mut crate::server::Services>,
    on_worker: bool,
}

/// What the connection needs to know once the handler returns.
pub(crate) struct Outcome {
    pub status: u16,
    pub close: bool,
    pub error: Option<String>,
    pub next: Next,
    /// The head asked for `Transfer-Encoding: chunked` from us (a stream
    /// to an HTTP/1.1 client with no length).
    pub chunked: bool,
    /// No body goes out (HEAD, 204, 304...): drop what follows.
    pub bodyless: bool,
    /// The `Content-Length` the handler gave a streamed body: the stream
    /// is cut there, and the connection closes if it ends short.
    pub stream_length: Option<u64>,
}

impl<'a> Exchange<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        req: Req<'a>,
        out: &'a mut Vec<u8>,
        held: &'a mut Vec<u8>,
        cfg: &'a Config,
        date: &'a [u8],
        now: u64,
        keep_alive: bool,
        services: Option<&'a mut crate::server::Services>,
        pre_read: Option<Vec<u8>>,
    ) -> Exchange<'a> {
        held.clear();
        let head_start = out.len();
        Exchange {
            req,
            out,
            held,
            cfg,
            date,
            now,
            head: HeadState::None,
            head_start,
            status: 0,
            length: None,
            chunked_by_handler: false,
            connection_by_handler: false,
            close: !keep_alive,
            error: None,
            next: Next::Nothing,
            on_worker: services.is_none(),
            pre_read,
            services,
        }
    }

    // ----------------------------------------------------------- request

    /// The method (`GET`, `POST`, `SPAM`...).
    pub fn command(&self) -> &str {
        lossy(self.req.line.method)
    }

    pub fn command_bytes(&self) -> &[u8] {
        self.req.line.method
    }

    /// The target as it came, Python's `self.path` (`/a/b?x=1`), as text.
    pub fn path(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.req.line.raw_target)
    }

    pub fn path_bytes(&self) -> &[u8] {
        self.req.line.raw_target
    }

    /// The path part of the target, not decoded (`/a%20b` of
    /// `/a%20b?x=1`); an absolute-form target's path.
    pub fn url_path(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(crate::proto::urlpath::split_target(self.req.line.target).path)
    }

    /// The query of the target, after `?` (empty if none).
    pub fn query(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(crate::proto::urlpath::split_target(self.req.line.target).query)
    }

    /// The path part, percent-decoded (`/a b`).
    pub fn decoded_path(&self) -> String {
        let path = crate::proto::urlpath::split_target(self.req.line.target).path;
        String::from_utf8_lossy(&crate::proto::urlpath::display_path(path)).into_owned()
    }

    /// The version as the client wrote it (`HTTP/1.1`; `HTTP/0.9` for a
    /// two-word request line), Python's `request_version`.
    pub fn request_version(&self) -> &str {
        if self.req.line.version_word.is_empty() {
            "HTTP/0.9"
        } else {
            lossy(self.req.line.version_word)
        }
    }

    pub fn headers(&self) -> Headers<'a> {
        Headers {
            list: self.req.headers,
        }
    }

    /// The first value of the header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers().get(name)
    }

    /// The client's address and port (an IPv4 client of a dual-stack
    /// socket shows as IPv4, as Python prints it).
    pub fn client_address(&self) -> SocketAddr {
        let ip = crate::server::log::client_ip(self.req.peer.ip());
        SocketAddr::new(ip, self.req.peer.port())
    }

    /// The request line as it came, without its line ending.
    pub fn requestline(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.req.raw_line)
    }

    /// The request is HEAD: whatever body is written is dropped.
    pub fn is_head(&self) -> bool {
        self.req.line.method == b"HEAD"
    }

    /// How long the request body is: `Some(n)`, or `None` for a chunked
    /// one (its length is known once read).
    pub fn body_length(&self) -> Option<u64> {
        match self.req.framing {
            BodyFraming::Length(n) => Some(n),
            BodyFraming::Chunked => None,
        }
    }

    /// The server's `protocol_version`.
    pub fn protocol_version(&self) -> &'static str {
        self.cfg.protocol.as_str()
    }

    /// The `Server` header the server sends (Python's `version_string()`).
    pub fn version_string(&self) -> &str {
        &self.cfg.server
    }

    /// Runs on a worker thread (deferred work, or a threaded server).
    pub fn on_worker(&self) -> bool {
        self.on_worker
    }

    /// Now, as an HTTP date (Python's `date_time_string()`).
    pub fn date_time_string(&self) -> &str {
        lossy(self.date)
    }

    /// Seconds since 1970, as the loop read the clock for this request.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub(crate) fn req(&self) -> &Req<'a> {
        &self.req
    }

    // ----------------------------------------------------------- answer

    /// Starts the answer: the status line with Python's phrase for `code`,
    /// then `Server` and `Date` (Python's `send_response`).
    pub fn send_response(&mut self, code: u16) {
        let phrase = status::phrase(code);
        self.start_head(code, phrase.as_bytes());
    }

    /// [`Exchange::send_response`] with a reason phrase of your own.
    pub fn send_response_message(&mut self, code: u16, message: &str) {
        let reason = latin1(message);
        self.start_head(code, &reason);
    }

    fn start_head(&mut self, code: u16, reason: &[u8]) {
        if self.head != HeadState::None {
            // A second start: the answer so far is replaced.
            self.out.truncate(self.head_start);
            self.held.clear();
            self.length = None;
            self.chunked_by_handler = false;
            self.connection_by_handler = false;
        }
        self.head_start = self.out.len();
        self.status = code;
        let http09 = self.req.line.version == Version::Http09;
        Head::status_line_only(self.out, self.cfg.protocol.as_str(), code, reason, http09);
        if !http09 {
            // Both made by the server (`server_version` takes out control
            // characters): no need to check them on every answer.
            self.out.extend_from_slice(b"Server: ");
            self.out.extend_from_slice(self.cfg.server.as_bytes());
            self.out.extend_from_slice(b"\r\nDate: ");
            self.out.extend_from_slice(self.date);
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&self.cfg.extra_headers);
        }
        self.head = HeadState::Open;
    }

    /// Adds a header (Python's `send_header`). `Connection: close` (or
    /// `keep-alive`) decides whether the connection is kept, as in Python.
    /// A header whose name is not a token or whose value holds CR, LF or
    /// NUL is left out: it could end the head early (response splitting).
    pub fn send_header(&mut self, name: &str, value: &str) {
        self.send_header_bytes(name, value.as_bytes());
    }

    /// [`Exchange::send_header`] with a value of bytes.
    pub fn send_header_bytes(&mut self, name: &str, value: &[u8]) {
        if self.head != HeadState::Open || !is_token(name) {
            return;
        }
        if crate::proto::response::has_line_break(value) {
            return;
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            // Digits only: `+3` or ` 3` would be read differently by
            // different clients.
            let Some(n) = request::parse_content_length(value) else {
                return;
            };
            self.length = Some(n);
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            self.chunked_by_handler = true;
            if !request::ends_chunked(value) {
                // Not chunked last: only closing ends such a body.
                self.close = true;
            }
        } else if name.eq_ignore_ascii_case("Connection") {
            self.connection_by_handler = true;
            if request::has_token(value, "close") {
                self.close = true;
            } else if request::has_token(value, "keep-alive") {
                self.close = false;
            }
        }
        if self.req.line.version != Version::Http09 {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// A header with a number for its value, written without formatting
    /// machinery (the common `Content-Length`).
    pub fn send_header_num(&mut self, name: &str, value: u64) {
        if self.head != HeadState::Open || !is_token(name) {
            return;
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            self.length = Some(value);
        }
        if self.req.line.version != Version::Http09 {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            push_decimal(self.out, value);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Ends the head (Python's `end_headers`). What is written after it is
    /// the body.
    pub fn end_headers(&mut self) {
        if self.head != HeadState::Open {
            return;
        }
        // A HEAD answer of unknown length is held like any other, so its
        // head says the length the GET answer would have: the body is
        // dropped then.
        let head_needs_length = self.is_head() && status_has_body(self.status);
        if self.length.is_some()
            || self.chunked_by_handler
            || (self.bodyless() && !head_needs_length)
            || self.delimited_by_close()
        {
            // A 205 must say its body is empty (RFC 9110 15.3.6).
            let zero = (self.status == 205 && self.length.is_none()).then_some(0);
            self.write_server_headers(zero, false);
            self.head = HeadState::Sent;
        } else {
            self.head = HeadState::Held;
        }
    }

    /// No body goes out: HEAD, a 1xx, 204, 205 or 304.
    fn bodyless(&self) -> bool {
        self.is_head() || !status_has_body(self.status)
    }

    /// The body ends where the connection does: an HTTP/1.0 server or
    /// client (unless it is kept alive, which needs a length).
    fn delimited_by_close(&self) -> bool {
        self.cfg.protocol == Protocol::Http10
            || self.req.line.version < Version::HTTP_11 && self.close
    }

    /// Our own framing headers, then the blank line that ends the head.
    fn write_server_headers(&mut self, length: Option<u64>, chunked: bool) {
        if self.req.line.version == Version::Http09 {
            return;
        }
        if let Some(n) = length {
            self.out.extend_from_slice(b"Content-Length: ");
            push_decimal(self.out, n);
            self.out.extend_from_slice(b"\r\n");
        }
        if chunked {
            self.out
                .extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if self.cfg.protocol == Protocol::Http11 && !self.connection_by_handler {
            if self.close && self.req.line.version >= Version::HTTP_11 {
                self.out.extend_from_slice(b"Connection: close\r\n");
            } else if !self.close && self.req.line.version < Version::HTTP_11 {
                self.out.extend_from_slice(b"Connection: keep-alive\r\n");
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Writes body bytes (Python's `wfile.write`). Before `end_headers`
    /// they follow the head as they are (no head at all if
    /// `send_response` was never called: Python's HTTP/0.9 style).
    pub fn write(&mut self, bytes: &[u8]) {
        match self.head {
            HeadState::Open => {
                self.end_headers();
                self.write(bytes);
            }
            HeadState::Held => self.held.extend_from_slice(bytes),
            HeadState::Sent if self.bodyless() => {}
            HeadState::Sent | HeadState::None => self.out.extend_from_slice(bytes),
        }
    }

    /// Python's `wfile`, for `write!` and friends.
    pub fn wfile(&mut self) -> Wfile<'_, 'a> {
        Wfile(self)
    }

    /// Python's `send_error`: logs the error, sends `code` with `message`
    /// as the reason, `Connection: close`, and Python's HTML error page
    /// (byte for byte) with `explain` in it. Defaults are Python's phrase
    /// and explanation for the code. Whatever was written before is
    /// replaced.
    pub fn send_error(&mut self, code: u16, message: Option<&str>, explain: Option<&str>) {
        self.send_error_with(code, message, explain, &[]);
    }

    /// [`Exchange::send_error`] with more headers (`Retry-After`...).
    pub fn send_error_with(
        &mut self,
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
        extra: &[(&str, &[u8])],
    ) {
        let message = message.unwrap_or_else(|| status::phrase(code));
        let explain = explain.unwrap_or_else(|| status::explanation(code));
        self.next = Next::Nothing;
        self.error = Some(message.to_owned());
        self.send_response_message(code, message);
        self.send_header("Connection", "close");
        for (name, value) in extra {
            self.send_header_bytes(name, value);
        }
        let mut page = Vec::new();
        if status_has_body(code) {
            push_error_page(&mut page, code, message, explain);
            self.send_header("Content-Type", "text/html;charset=utf-8");
            self.send_header_num("Content-Length", page.len() as u64);
        }
        self.end_headers();
        self.write(&page);
    }

    /// Python's `501 Unsupported method ('X')`.
    pub fn unsupported(&mut self) {
        let message = format!(
            "Unsupported method ({})",
            crate::proto::escape::py_repr_latin1(self.req.line.method)
        );
        self.send_error(501, Some(&message), None);
    }

    // ----------------------------------------------------------- what follows

    /// The body is `len` bytes of `file` from `offset`, sent with
    /// `sendfile`. Call it after `end_headers`; if the handler set no
    /// `Content-Length`, it is `len`.
    pub fn send_file_body(&mut self, file: File, offset: u64, len: u64) {
        if self.on_worker {
            self.next = Next::OwnedFile { file, offset, len };
        } else {
            self.next = Next::File {
                file: std::rc::Rc::new(file),
                offset,
                len,
            };
        }
    }

    pub(crate) fn send_shared_file_body(&mut self, file: std::rc::Rc<File>, offset: u64, len: u64) {
        self.next = Next::File { file, offset, len };
    }

    /// The body comes from `source`, as the client takes it: chunked to
    /// an HTTP/1.1 client unless the handler set `Content-Length`, else
    /// delimited by closing the connection.
    pub fn stream(&mut self, source: impl BodySource + Send + 'static) {
        self.next = Next::Stream(Box::new(source));
    }

    pub(crate) fn stream_local(&mut self, source: Box<dyn BodySource>) {
        self.next = Next::LocalStream(source);
    }

    /// Reads the request body whole (at most `limit` bytes: beyond that the
    /// answer is 413 and the connection closes), then calls `then` with it.
    /// `100 Continue` goes out first if the client asked for it.
    pub fn read_body(&mut self, limit: u64, then: impl FnOnce(&mut Exchange, Vec<u8>) + 'static) {
        if let Some(body) = self.pre_read.take() {
            if body.len() as u64 > limit {
                self.send_error(413, None, None);
                return;
            }
            return then(self, body);
        }
        if self.req.framing == BodyFraming::NONE {
            return then(self, Vec::new());
        }
        if self.on_worker {
            return self.body_unreadable_here();
        }
        if self.body_length().is_some_and(|n| n > limit) {
            // Said too large up front: refused before a byte is read (and
            // with no `100 Continue`).
            self.send_error(413, None, None);
            return;
        }
        self.next = Next::ReadBody {
            limit,
            then: Box::new(then),
        };
    }

    /// Streams the request body to `sink` as it arrives; `sink.end` then
    /// answers. `100 Continue` goes out first if the client asked for it.
    pub fn read_body_with(&mut self, mut sink: impl BodyHandler + 'static) {
        if let Some(body) = self.pre_read.take() {
            if let Err(e) = sink.data(&body) {
                self.send_error(e.status, Some(&e.message), None);
                return;
            }
            return Box::new(sink).end(self);
        }
        if self.req.framing == BodyFraming::NONE {
            return Box::new(sink).end(self);
        }
        if self.on_worker {
            return self.body_unreadable_here();
        }
        self.next = Next::ReadBodyWith(Box::new(sink));
    }

    /// On a worker, the body is whatever the loop read before the work
    /// was handed over; a body consumed before that cannot be read again.
    fn body_unreadable_here(&mut self) {
        self.send_error(
            500,
            Some("The request body was read before the work was deferred"),
            None,
        );
    }

    /// Calls `f` on each turn of the loop until it says [`Poll::Ready`]:
    /// for an answer that waits on something the loop makes progress on.
    pub fn poll(&mut self, f: impl FnMut(&mut Exchange) -> Poll + 'static) {
        if self.on_worker {
            // A worker may simply block for what it waits on.
            self.send_error(
                500,
                Some("poll() is for the loop: a worker may block"),
                None,
            );
            return;
        }
        self.next = Next::Poll(Box::new(f));
    }

    /// Runs `job` on one of the server's worker threads, where it may
    /// block; it answers through the exchange it is given, and the loop
    /// sends that answer. The loop goes on serving everyone else
    /// meanwhile. A full pool answers 503; a job that takes longer than
    /// the server's defer timeout gets 504; if the client leaves first,
    /// the answer is dropped.
    pub fn defer(&mut self, job: impl FnOnce(&mut Exchange) + Send + 'static) {
        if self.on_worker {
            return job(self);
        }
        self.next = Next::Defer(Box::new(job));
    }

    /// Runs a CGI script; its output is the answer.
    pub fn run_cgi(&mut self, command: CgiCommand) {
        self.next = Next::Cgi(Box::new(command));
    }

    /// The answer is complete: what the connection does next.
    pub(crate) fn finish(mut self) -> Outcome {
        if matches!(
            self.next,
            Next::ReadBody { .. }
                | Next::ReadBodyWith(_)
                | Next::Poll(_)
                | Next::Defer(_)
                | Next::Cgi(_)
        ) {
            // The answer comes later, whole: nothing of a head begun now.
            self.out.truncate(self.head_start);
            self.held.clear();
            return Outcome {
                status: 0,
                close: self.close,
                error: None,
                next: std::mem::replace(&mut self.next, Next::Nothing),
                chunked: false,
                bodyless: self.is_head(),
                stream_length: None,
            };
        }
        if self.head == HeadState::None
            && matches!(self.next, Next::Nothing)
            && self.out.len() == self.head_start
        {
            self.send_error(500, Some("The handler sent no response"), None);
        }
        if self.head == HeadState::Open {
            self.end_headers();
        }
        let bodyless = self.bodyless();
        let mut chunked = false;
        if self.head == HeadState::Held {
            let length = match &self.next {
                Next::File { len, .. } | Next::OwnedFile { len, .. } => {
                    Some(*len + self.held.len() as u64)
                }
                Next::Stream(_) | Next::LocalStream(_) => None,
                _ => Some(self.held.len() as u64),
            };
            if length.is_none() {
                if self.req.line.version >= Version::HTTP_11 {
                    // A stream of unknown length: chunked.
                    chunked = true;
                } else {
                    // An HTTP/1.0 client knows no chunking: the body
                    // ends where the connection does.
                    self.close = true;
                }
            }
            self.write_server_headers(length, chunked);
            if bodyless {
                self.held.clear();
            } else if chunked && !self.held.is_empty() {
                let mut piece = std::mem::take(self.held);
                write_chunk(self.out, &piece);
                piece.clear();
                *self.held = piece;
            } else {
                self.out.extend_from_slice(self.held);
            }
        } else if self.delimited_by_close() && !bodyless {
            self.close = true;
        }
        if self.head == HeadState::None && self.out.len() > self.head_start {
            // Bytes with no head at all (HTTP/0.9 style): nothing says
            // where they end but the connection's end.
            self.close = true;
        }
        let stream_length = self.hold_to_length(bodyless);
        Outcome {
            status: if self.status == 0 { 200 } else { self.status },
            close: self.close,
            error: self.error.take(),
            next: std::mem::replace(&mut self.next, Next::Nothing),
            chunked,
            bodyless,
            stream_length,
        }
    }

    /// Keeps the body to the `Content-Length` the handler gave: what was
    /// written past it is cut, a file is cut to fit, a stream is cut where
    /// it is reached (its length is returned for that); a body that falls
    /// short, or was cut, closes the connection, since only closing can
    /// then tell the client where it ends.
    fn hold_to_length(&mut self, bodyless: bool) -> Option<u64> {
        let n = self.length?;
        if bodyless
            || self.head != HeadState::Sent
            || self.chunked_by_handler
            || self.req.line.version == Version::Http09
        {
            return None;
        }
        let body_start = self.head_end();
        let written = (self.out.len() - body_start) as u64;
        if written > n {
            self.out.truncate(body_start + n as usize);
            self.close = true;
        }
        let left = n.saturating_sub(written);
        match &mut self.next {
            Next::Nothing if left > 0 => self.close = true,
            Next::File { len, .. } | Next::OwnedFile { len, .. } if *len != left => {
                *len = (*len).min(left);
                self.close = true;
            }
            Next::Stream(_) | Next::LocalStream(_) => return Some(left),
            _ => {}
        }
        None
    }

    /// Where the head ends in `out` (after the blank line), if it does.
    fn head_end(&self) -> usize {
        memchr::memmem::find(&self.out[self.head_start..], b"\r\n\r\n")
            .map_or(self.head_start, |i| self.head_start + i + 4)
    }
}

/// Appends one chunk of a chunked body.
pub(crate) fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = data.len();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn is_token(name: &str) -> bool {
    request::is_token(name.as_bytes())
}

/// Python's `wfile`: body bytes through `std::io::Write`.
pub struct Wfile<'e, 'a>(&'e mut Exchange<'a>);

impl std::io::Write for Wfile<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
