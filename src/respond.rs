//! The decision of what to answer a request, and the bytes of that answer's
//! head (and of any small body), with no socket in sight.
//!
//! The connection hands over a parsed request and a buffer; this module
//! writes into the buffer and returns a [`Reply`] telling the connection what
//! else to send (a file), whether to keep the connection, and what to log.

use crate::handlers::cgi;
use crate::handlers::files;
use crate::proto::request::{self, BodyFraming, Rejection, RequestLine, Version};
use crate::proto::response::{Head, latin1, push_error_page, status_has_body};
use crate::proto::status;
use crate::server::child::Launch;
use crate::server::clock::Clock;
use std::fs::File;
use std::path::PathBuf;

/// The protocol version we answer with, Python's `protocol_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http10,
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

/// What is served and how: fixed for the life of the server.
pub struct Site {
    /// The served directory, open, so every lookup is relative to it.
    pub root: File,
    pub root_path: PathBuf,
    pub protocol: Protocol,
    pub cgi: bool,
    /// `SERVER_NAME` and `SERVER_PORT` for CGI scripts.
    pub server_name: String,
    pub server_port: u16,
    /// Header lines sent on every response (`-H`, `--cors`, `--no-cache`),
    /// formatted once at start-up.
    pub extra_headers: std::rc::Rc<[u8]>,
    /// Answer CORS preflight requests (`--cors`).
    pub cors: bool,
    /// Refuse symlinks that lead out of the served directory.
    pub contain_symlinks: bool,
    /// Listings with sizes, times and sorting (`--rich-listing`).
    pub rich_listing: bool,
}

/// A request whose head has been parsed.
pub struct Request<'a> {
    pub peer: std::net::IpAddr,
    /// The request line without its line ending, for the log.
    pub raw_line: &'a [u8],
    pub line: RequestLine<'a>,
    pub headers: &'a [httparse::Header<'a>],
    /// Where the body ends, already checked (`request::body_framing`).
    pub framing: BodyFraming,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        request::header(self.headers, name)
    }
}

/// A body that is not in the output buffer.
pub enum Body {
    None,
    /// `len` bytes of `file` from `offset`, to go out with `sendfile`.
    File {
        file: std::rc::Rc<File>,
        offset: u64,
        len: u64,
    },
    /// A CGI script to run; its output makes the response.
    Cgi(Box<CgiRequest>),
    /// A response made as the socket drains (a listing), head included:
    /// nothing has been written for it yet.
    Produce(Box<dyn Producer>),
}

/// A response made piece by piece, head first, as the socket takes it.
pub trait Producer {
    /// Appends the next bytes of the response to `out` (a few KiB at most).
    fn produce(&mut self, out: &mut Vec<u8>, clock: &Clock) -> Produced;
}

/// What a [`Producer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produced {
    /// Wrote some; call again once it is sent.
    More,
    /// Wrote nothing yet but made progress (a listing being read): call
    /// again on the next turn of the loop.
    Again,
    /// The response is complete; `close` ends the connection after it.
    Done { close: bool },
}

/// A script to run for this request, and how to frame what it says.
#[derive(Debug)]
pub struct CgiRequest {
    pub launch: Launch,
    /// Request body bytes to pass to the script's stdin.
    pub body_len: u64,
    pub head_only: bool,
    /// The client understands a chunked response.
    pub chunked_ok: bool,
    pub version: Version,
}

/// What the connection does once the head written by [`respond`] is out.
pub struct Reply {
    pub status: u16,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
    /// The request body to read and throw away before the next request.
    pub discard: BodyFraming,
    /// The error message Python logs before the request line.
    pub error: Option<String>,
}

impl Reply {
    /// A response whose head and body are already written, connection kept.
    pub fn complete(status: u16) -> Reply {
        Reply {
            status,
            body: Body::None,
            close: false,
            discard: BodyFraming::NONE,
            error: None,
        }
    }
}

/// Buffers reused from request to request so answering does not allocate,
/// and the cache of open files.
#[derive(Default)]
pub struct Scratch {
    /// `None` when inotify is unavailable: every request then opens.
    pub cache: Option<crate::handlers::cache::FileCache>,
    pub path: Vec<u8>,
    pub cpath: Vec<u8>,
    /// The name of a pre-compressed twin being looked for.
    pub twin: Vec<u8>,
    /// Directory listings being built or sent, shared.
    pub listings: crate::handlers::listing::Listings,
}

/// Everything about the response that does not depend on the resource.
pub struct Ctx<'a> {
    pub site: &'a Site,
    /// Now, as the `Date` header says it.
    pub date: &'a [u8],
    /// Now, in seconds since 1970.
    pub now: u64,
    pub http09: bool,
    pub head_only: bool,
    /// An HTTP/1.0 client's connection is kept: say so, or it cannot know.
    pub announce_keep_alive: bool,
    /// An HTTP/1.1 connection ends after this response: say so (RFC 9112
    /// 9.6), which Python does only on errors.
    pub announce_close: bool,
}

impl Ctx<'_> {
    pub fn head<'o>(&self, out: &'o mut Vec<u8>, code: u16) -> Head<'o> {
        self.style().head(out, code, self.date)
    }

    /// What a head written later (once a listing is read) needs of this.
    pub fn style(&self) -> HeadStyle {
        HeadStyle {
            protocol: self.site.protocol,
            http09: self.http09,
            head_only: self.head_only,
            announce_keep_alive: self.announce_keep_alive,
            announce_close: self.announce_close,
            extra_headers: std::rc::Rc::clone(&self.site.extra_headers),
        }
    }

    /// Python's `send_error`: the error page, `Connection: close`, a log line.
    pub fn error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
    ) -> Reply {
        self.error_with(out, code, message, explain, &[])
    }

    /// [`Ctx::error`] with more header lines (`Retry-After`...).
    pub fn error_with(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
        extra: &[(&str, &[u8])],
    ) -> Reply {
        self.style()
            .error(out, self.date, code, message, explain, extra)
    }
}

/// How heads are written for one request, owned, so a response produced
/// later (a listing) writes the same head an immediate one would.
#[derive(Clone)]
pub struct HeadStyle {
    pub protocol: Protocol,
    pub http09: bool,
    pub head_only: bool,
    pub announce_keep_alive: bool,
    pub announce_close: bool,
    pub extra_headers: std::rc::Rc<[u8]>,
}

impl HeadStyle {
    pub fn head<'o>(&self, out: &'o mut Vec<u8>, code: u16, date: &[u8]) -> Head<'o> {
        let mut head = Head::new(out, self.protocol.as_str(), code, self.http09, date);
        if self.announce_keep_alive {
            head.header("Connection", b"keep-alive");
        }
        if self.announce_close {
            head.header("Connection", b"close");
        }
        head.raw(&self.extra_headers);
        head
    }

    /// Python's `send_error` page and head (see [`Ctx::error`]).
    pub fn error(
        &self,
        out: &mut Vec<u8>,
        date: &[u8],
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
        extra: &[(&str, &[u8])],
    ) -> Reply {
        let message = message.unwrap_or_else(|| status::phrase(code));
        let explain = explain.unwrap_or_else(|| status::explanation(code));
        let mut page = Vec::new();
        if status_has_body(code) {
            push_error_page(&mut page, code, message, explain);
        }
        // Python's status line carries the error message as its reason.
        let reason = latin1(message);
        let proto = self.protocol.as_str();
        let mut head = Head::with_reason(out, proto, code, &reason, self.http09, date);
        head.header("Connection", b"close");
        head.raw(&self.extra_headers);
        for (name, value) in extra {
            head.header(name, value);
        }
        if !page.is_empty() {
            head.header("Content-Type", b"text/html;charset=utf-8");
            head.header_num("Content-Length", page.len() as u64);
        }
        head.finish();
        if !self.head_only {
            out.extend_from_slice(&page);
        }
        Reply {
            status: code,
            body: Body::None,
            close: true,
            discard: BodyFraming::NONE,
            error: Some(message.to_owned()),
        }
    }
}

/// Answers a head that could not be parsed (Python's `send_error` from
/// `parse_request` or `handle_one_request`).
pub fn reject(
    site: &Site,
    clock: &Clock,
    rejection: &Rejection,
    head_only: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let ctx = Ctx {
        site,
        date: clock.http_date(),
        now: clock.unix_secs(),
        http09: false,
        head_only,
        announce_keep_alive: false,
        announce_close: false,
    };
    ctx.error(
        out,
        rejection.status,
        rejection.message.as_deref(),
        rejection.explain.as_deref(),
    )
}

/// Answers a parsed request: writes its head, and its body when it is small
/// and in memory, into `out`.
pub fn respond(
    site: &Site,
    clock: &Clock,
    req: &Request,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Reply {
    let version = req.line.version;
    let keep = keep_alive(site.protocol, &req.line, req.headers);
    let ctx = Ctx {
        site,
        date: clock.http_date(),
        now: clock.unix_secs(),
        http09: version == Version::Http09,
        head_only: req.line.method == b"HEAD",
        announce_keep_alive: keep && version < Version::HTTP_11,
        announce_close: !keep && site.protocol == Protocol::Http11 && version >= Version::HTTP_11,
    };
    let expects_continue = req
        .header("Expect")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    if expects_continue && site.protocol == Protocol::Http11 && version >= Version::HTTP_11 {
        Head::bare(out, site.protocol.as_str(), 100, false).finish();
    }

    let method = req.line.method;
    let script = match method {
        b"GET" | b"HEAD" | b"POST" if site.cgi => cgi::split_cgi(req.line.target),
        _ => None,
    };
    let mut reply = match (method, script) {
        (_, Some((dir, rest))) => run_cgi(&ctx, req, &dir, &rest, out),
        (b"GET" | b"HEAD", None) => files::serve(&ctx, req, out, scratch, clock.now),
        (b"OPTIONS", None) if site.cors => preflight(&ctx, req, out),
        (b"POST", None) if site.cgi => {
            ctx.error(out, 501, Some("Can only POST to CGI scripts"), None)
        }
        _ => {
            let message = format!(
                "Unsupported method ({})",
                crate::proto::escape::py_repr_latin1(method)
            );
            ctx.error(out, 501, Some(&message), None)
        }
    };
    if reply.close {
        return reply;
    }
    reply.close = !keep;
    if !matches!(reply.body, Body::Cgi(_)) {
        // We never read a GET body, but we must step over it to find the
        // next request.
        reply.discard = req.framing;
    }
    reply
}

/// A CORS preflight (`--cors`): which methods and headers may be used.
/// Without `--cors`, OPTIONS is 501 as in Python.
fn preflight(ctx: &Ctx, req: &Request, out: &mut Vec<u8>) -> Reply {
    let mut head = ctx.head(out, 204);
    let methods: &[u8] = if ctx.site.cgi {
        b"GET, HEAD, POST, OPTIONS"
    } else {
        b"GET, HEAD, OPTIONS"
    };
    head.header("Access-Control-Allow-Methods", methods);
    // Echoed only if it is what it should be, a list of field names: a
    // value copied from a request never carries anything else into ours.
    if let Some(asked) = req.header("Access-Control-Request-Headers")
        && is_token_list(asked)
    {
        head.header("Access-Control-Allow-Headers", asked);
    }
    head.header("Access-Control-Max-Age", b"86400");
    head.finish();
    Reply::complete(204)
}

/// `token *( OWS "," OWS token )`, nothing else.
fn is_token_list(value: &[u8]) -> bool {
    let is_token = |t: &[u8]| {
        !t.is_empty()
            && t.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    value
        .split(|&b| b == b',')
        .all(|item| is_token(request::trim_ows(item)))
}

/// Python's `run_cgi` up to the fork: find the script, refuse as Python
/// does, and build its environment.
fn run_cgi(ctx: &Ctx, req: &Request, dir: &[u8], rest: &[u8], out: &mut Vec<u8>) -> Reply {
    let site = ctx.site;
    let script = match cgi::find_script(&site.root_path, dir, rest) {
        Ok(script) => script,
        Err(refusal) => return ctx.error(out, refusal.status, Some(&refusal.message), None),
    };
    let BodyFraming::Length(body_len) = req.framing else {
        // A script needs CONTENT_LENGTH; we do not buffer chunked uploads.
        return ctx.error(out, 411, None, None);
    };
    let remote = crate::server::log::client_ip(req.peer).to_string();
    let env_ctx = cgi::EnvContext {
        root: &site.root_path,
        server_software: crate::proto::response::SERVER,
        server_name: &site.server_name,
        server_port: site.server_port,
        protocol: site.protocol.as_str(),
        method: req.line.method,
        remote_addr: &remote,
    };
    let env = cgi::environment(&env_ctx, &script, req.headers);
    let argument = cgi::argument(&script.query);
    let has_nul = |v: &std::ffi::OsStr| std::os::unix::ffi::OsStrExt::as_bytes(v).contains(&0);
    if env.iter().any(|(_, v)| has_nul(v)) || argument.as_deref().is_some_and(has_nul) {
        // No process can be given a NUL byte; the request is at fault.
        return ctx.error(out, 400, Some("NUL byte in a CGI variable"), None);
    }
    // Only a POST body is the script's input, as in Python; any other
    // request's body is skipped.
    let (to_script, discard) = if req.line.method == b"POST" {
        (body_len, 0)
    } else {
        (0, body_len)
    };
    Reply {
        status: 200,
        body: Body::Cgi(Box::new(CgiRequest {
            launch: Launch {
                argument,
                program: script.file,
                env,
            },
            body_len: to_script,
            head_only: ctx.head_only,
            chunked_ok: site.protocol == Protocol::Http11 && req.line.version >= Version::HTTP_11,
            version: req.line.version,
        })),
        close: false,
        discard: BodyFraming::Length(discard),
        error: None,
    }
}

/// Python's rules for `close_connection`, with `Connection` read as a list
/// of tokens rather than compared whole.
pub fn keep_alive(protocol: Protocol, line: &RequestLine, headers: &[httparse::Header]) -> bool {
    if protocol == Protocol::Http10 || line.version == Version::Http09 {
        return false;
    }
    match request::header(headers, "Connection") {
        Some(v) if request::has_token(v, "close") => false,
        Some(v) if request::has_token(v, "keep-alive") => true,
        _ => line.version >= Version::HTTP_11,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: Version) -> RequestLine<'static> {
        RequestLine {
            method: b"GET",
            target: b"/",
            version: v,
        }
    }

    fn h<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn keep_alive_rules() {
        use Protocol::*;
        assert!(keep_alive(Http11, &line(Version::HTTP_11), &[]));
        assert!(!keep_alive(Http11, &line(Version::HTTP_10), &[]));
        assert!(keep_alive(
            Http11,
            &line(Version::HTTP_10),
            &[h("connection", b"Keep-Alive")]
        ));
        assert!(!keep_alive(
            Http11,
            &line(Version::HTTP_11),
            &[h("Connection", b"close")]
        ));
        assert!(!keep_alive(
            Http10,
            &line(Version::HTTP_11),
            &[h("Connection", b"keep-alive")]
        ));
        assert!(!keep_alive(Http11, &line(Version::Http09), &[]));
    }
}
