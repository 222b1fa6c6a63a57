//! The decision of what to answer a request, and the bytes of that answer's
//! head (and of any small body), with no socket in sight.
//!
//! The connection hands over a parsed request and a buffer; this module
//! writes into the buffer and returns a [`Reply`] telling the connection what
//! else to send (a file), whether to keep the connection, and what to log.

use crate::cgi;
use crate::child::Launch;
use crate::files;
use crate::request::{self, Rejection, RequestLine, Version};
use crate::response::{Head, latin1, push_error_page, status_has_body};
use crate::status;
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
    pub extra_headers: Vec<u8>,
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
    /// Request body bytes to read and throw away before the next request.
    pub discard: u64,
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
            discard: 0,
            error: None,
        }
    }
}

/// Buffers reused from request to request so answering does not allocate,
/// and the cache of open files.
#[derive(Default)]
pub struct Scratch {
    /// `None` when inotify is unavailable: every request then opens.
    pub cache: Option<crate::cache::FileCache>,
    pub path: Vec<u8>,
    pub cpath: Vec<u8>,
    /// The name of a pre-compressed twin being looked for.
    pub twin: Vec<u8>,
}

/// Everything about the response that does not depend on the resource.
pub struct Ctx<'a> {
    pub site: &'a Site,
    pub date: &'a [u8],
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
        let mut head = Head::new(
            out,
            self.site.protocol.as_str(),
            code,
            self.http09,
            self.date,
        );
        if self.announce_keep_alive {
            head.header("Connection", b"keep-alive");
        }
        if self.announce_close {
            head.header("Connection", b"close");
        }
        head.raw(&self.site.extra_headers);
        head
    }

    /// Python's `send_error`: the error page, `Connection: close`, a log line.
    pub fn error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
    ) -> Reply {
        let message = message.unwrap_or_else(|| status::phrase(code));
        let explain = explain.unwrap_or_else(|| status::explanation(code));
        let mut page = Vec::new();
        if status_has_body(code) {
            push_error_page(&mut page, code, message, explain);
        }
        // Python's status line carries the error message as its reason.
        let reason = latin1(message);
        let proto = self.site.protocol.as_str();
        let mut head = Head::with_reason(out, proto, code, &reason, self.http09, self.date);
        head.header("Connection", b"close");
        head.raw(&self.site.extra_headers);
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
            discard: 0,
            error: Some(message.to_owned()),
        }
    }
}

/// Answers a head that could not be parsed (Python's `send_error` from
/// `parse_request` or `handle_one_request`).
pub fn reject(
    site: &Site,
    date: &[u8],
    rejection: &Rejection,
    head_only: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let ctx = Ctx {
        site,
        date,
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
    date: &[u8],
    req: &Request,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Reply {
    let version = req.line.version;
    let body_len = body_length(req.headers);
    // A body we cannot measure means the connection must end after this.
    let keep = keep_alive(site.protocol, &req.line, req.headers) && body_len.is_some();
    let ctx = Ctx {
        site,
        date,
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
        (_, Some((dir, rest))) => run_cgi(&ctx, req, &dir, &rest, body_len, out),
        (b"GET" | b"HEAD", None) => files::serve(&ctx, req, out, scratch),
        (b"OPTIONS", None) if site.cors => preflight(&ctx, req, out),
        (b"POST", None) if site.cgi => {
            ctx.error(out, 501, Some("Can only POST to CGI scripts"), None)
        }
        _ => {
            let message = format!(
                "Unsupported method ({})",
                crate::escape::py_repr_latin1(method)
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
        // next request; a body we cannot measure means the connection ends.
        match body_len {
            Some(len) => reply.discard = len,
            None => {
                // Its end is unknown: the connection ends, after a lingering
                // close that reads what the client still sends.
                reply.close = true;
                reply.discard = u64::MAX;
            }
        }
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
    if let Some(asked) = req.header("Access-Control-Request-Headers") {
        head.header("Access-Control-Allow-Headers", asked);
    }
    head.header("Access-Control-Max-Age", b"86400");
    head.finish();
    Reply::complete(204)
}

/// Python's `run_cgi` up to the fork: find the script, refuse as Python
/// does, and build its environment.
fn run_cgi(
    ctx: &Ctx,
    req: &Request,
    dir: &[u8],
    rest: &[u8],
    body_len: Option<u64>,
    out: &mut Vec<u8>,
) -> Reply {
    let site = ctx.site;
    let script = match cgi::find_script(&site.root_path, dir, rest) {
        Ok(script) => script,
        Err(refusal) => return ctx.error(out, refusal.status, Some(&refusal.message), None),
    };
    let Some(body_len) = body_len else {
        // A script needs CONTENT_LENGTH; we do not buffer chunked uploads.
        return ctx.error(out, 411, None, None);
    };
    let remote = crate::log::client_ip(req.peer).to_string();
    let env_ctx = cgi::EnvContext {
        root: &site.root_path,
        server_software: crate::response::SERVER,
        server_name: &site.server_name,
        server_port: site.server_port,
        protocol: site.protocol.as_str(),
        method: req.line.method,
        remote_addr: &remote,
    };
    let env = cgi::environment(&env_ctx, &script, req.headers);
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
                argument: cgi::argument(&script.query),
                program: script.file,
                env,
            },
            body_len: to_script,
            head_only: ctx.head_only,
            chunked_ok: site.protocol == Protocol::Http11 && req.line.version >= Version::HTTP_11,
            version: req.line.version,
        })),
        close: false,
        discard,
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

/// The request body's length: 0 without one, `None` when it cannot be
/// known without decoding (chunked) or the header is malformed.
pub fn body_length(headers: &[httparse::Header]) -> Option<u64> {
    if request::header(headers, "Transfer-Encoding").is_some() {
        return None;
    }
    let mut length = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    {
        let v = std::str::from_utf8(h.value).ok()?.parse::<u64>().ok()?;
        if length.is_some_and(|l| l != v) {
            return None;
        }
        length = Some(v);
    }
    Some(length.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::EMPTY_HEADER;

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

    #[test]
    fn body_lengths() {
        assert_eq!(body_length(&[EMPTY_HEADER; 0]), Some(0));
        assert_eq!(body_length(&[h("Content-Length", b"12")]), Some(12));
        assert_eq!(body_length(&[h("Content-Length", b"x")]), None);
        assert_eq!(
            body_length(&[h("Content-Length", b"1"), h("content-length", b"2")]),
            None
        );
        assert_eq!(body_length(&[h("Transfer-Encoding", b"chunked")]), None);
    }
}
