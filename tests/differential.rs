//! Differential test: tinyserve against `python3 -m http.server`.
//!
//! A corpus of raw requests (good and bad) is sent over raw TCP to the
//! newest Python 3 found (see `support::python`) and to tinyserve, both in
//! `-p HTTP/1.0` and `-p HTTP/1.1` mode, each request on a fresh connection,
//! half-closed after sending, read to EOF. The status line, every header
//! except `Server` and `Date` (names, case, order and values) and the body are
//! compared.
//!
//! Python behaviours tinyserve deliberately does NOT copy are listed in
//! [`DELIBERATE_DIFFERENCES`]; for those cases tinyserve's documented
//! behaviour is asserted instead of equality.
//!
//! A second, smaller table ([`persistence_corpus`]) sends requests WITHOUT
//! half-closing and checks that tinyserve keeps or closes the connection
//! exactly when Python does.
//!
//! A second test, [`differential_cgi_against_python`], runs `python3 -m
//! http.server --cgi` against `tinyserve --cgi` on a tree of scripts under
//! /tmp (see the CGI section at the end of this file).
//!
//! Content types that depend on the machine's /etc/mime.types are found at
//! test start by asking the same Python (built-in table against the
//! effective one), see [`Quirk::SystemMimeTypes`].
//!
//! Run: `cargo test --test differential -- --nocapture`
//!
//! Environment:
//! * `TINYSERVE_DIFF_SELFTEST=1`: run Python on both sides (validates the
//!   harness and the corpus expectations without tinyserve; deliberate cases
//!   are then compared for equality).
//! * `TINYSERVE_DIFF_ONLY=substring`: run only cases whose name contains it.
//! * `TINYSERVE_DIFF_VERBOSE=1`: print every case's outcome.
//! * `TINYSERVE_DIFF_WORKERS=1`: run the exchanges one at a time (then the
//!   last access-log lines printed when a server dies name the culprit).
//! * `TINYSERVE_KEEP_FIXTURE=1`: keep the fixture directory for inspection.
//! * `TINYSERVE_BIN=/path/to/program`: test another build or a stand-in.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use support::*;

/// The two protocol modes, as passed to `-p`.
const MODES: [&str; 2] = ["HTTP/1.0", "HTTP/1.1"];

/// Parallel workers for the exchanges (Python's listen backlog is 5, keep
/// the per-server concurrency at or below that).
const WORKERS: usize = 6;

/// Deadline for reading one exchange to EOF (Python answers in
/// milliseconds; kept short so a server that hangs cannot stall the run).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// Python uses the error message as the reason phrase
/// (`HTTP/1.0 404 File not found`, `501 Unsupported method ('POST')`);
/// a drop-in replacement should too. Set to false only if tinyserve's
/// standard reason phrases become a documented deliberate difference.
const COMPARE_REASON_PHRASE: bool = true;

// ---------------------------------------------------------------------------
// Deliberate differences
// ---------------------------------------------------------------------------

/// Python quirks tinyserve deliberately does not copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quirk {
    /// Bad version / 505 / bad HTTP/0.9 method / unparsable request line:
    /// Python's error has no status line.
    ErrorWithoutStatusLine,
    /// `%00` in the path: Python drops the connection.
    NulInPath,
    /// HTTP/1.1 mode, HTTP/1.0 client asking `Connection: keep-alive`.
    KeepAliveHeader,
    /// Raw (not percent-encoded) non-ASCII bytes in the path.
    RawNonAsciiPath,
    /// A path byte that is not UTF-8 (`%FF`, or a raw 0xFF).
    NonUtf8PathByte,
    /// Content types Python takes from the system's `/etc/mime.types`.
    SystemMimeTypes,
    /// `Connection` read as a list of tokens, not compared whole.
    ConnectionTokenList,
    /// Files carry `ETag` and `Accept-Ranges` (detected on every exchange,
    /// not attached to cases).
    FileValidators,
    /// CGI: the script's `Status:` / `Location:` header is acted on.
    CgiOutputHeader,
    /// CGI: the framing of a script's body is tinyserve's (checked on every
    /// script output, not attached to cases).
    CgiFraming,
    /// CGI: HEAD to a script gets no body.
    CgiHead,
    /// CGI: a script that prints no valid header block gets 502.
    CgiInvalidHeader,
    /// CGI: `PATH_INFO` is percent-decoded once, not twice.
    CgiPathInfoDecodedOnce,
    /// A header block whose framing is in doubt gets 400 and close.
    StrictHeaders,
    /// An absolute-form target (`http://host/path`) names `/path`.
    AbsoluteForm,
    /// A date condition on more than one line is ignored.
    RepeatedDateIgnored,
}

/// The table of deliberate differences: (quirk, what Python does, what
/// tinyserve does instead). The README lists these.
const DELIBERATE_DIFFERENCES: &[(Quirk, &str, &str)] = &[
    (
        Quirk::ErrorWithoutStatusLine,
        "A bad request version (400), an HTTP version >= 2.0 (505), a bad HTTP/0.9 \
         method (400) or a request line with the wrong number of words that has no \
         parsable version (400) is answered with the error page body but NO status \
         line and no headers, because request_version is still HTTP/0.9 at that point.",
        "Sends a proper status line (server protocol version, same code, reason = the \
         same message) and headers, followed by the same error page body.",
    ),
    (
        Quirk::NulInPath,
        "A path containing %00 raises an uncaught ValueError (embedded null byte) and \
         the connection is dropped without any response.",
        "Answers 404 \"File not found\" with the standard error page.",
    ),
    (
        Quirk::KeepAliveHeader,
        "In HTTP/1.1 mode an HTTP/1.0 client sending `Connection: keep-alive` gets a \
         persistent connection but no `Connection` header in the response.",
        "Sends `Connection: keep-alive` back (the connection is persistent in both).",
    ),
    (
        Quirk::RawNonAsciiPath,
        "Raw (un-percent-encoded) bytes >= 0x80 in the path are decoded as Latin-1 and \
         re-encoded as UTF-8 (mojibake), so e.g. a raw UTF-8 name is not found (404).",
        "Uses the path bytes as they are (serves the file whose name is those bytes).",
    ),
    (
        Quirk::NonUtf8PathByte,
        "A percent-encoded byte that is not UTF-8 (`/list/bad%FF.txt`) fails \
         unquote(errors='surrogatepass') and is decoded again with errors='replace', \
         becoming U+FFFD, so the file named by that byte is not found (404); a raw 0xFF \
         byte is decoded as Latin-1 (U+00FF, written back as C3 BF): also 404. Only the \
         surrogate spelling `%ED%B3%BF` reaches the file.",
        "Uses the decoded byte as it is and serves the file whose name holds it \
         (`bad\\xff.txt`), for `%FF` and for a raw 0xFF alike.",
    ),
    (
        Quirk::SystemMimeTypes,
        "mimetypes.init() reads the system's /etc/mime.types (and other knownfiles), so \
         Content-type depends on the machine: e.g. .c text/x-csrc, .sh text/x-sh, .xml \
         application/xml, .rs application/rls-services+xml; extensions absent from both \
         tables (.toml) get application/octet-stream.",
        "Uses Python's BUILT-IN table (mimetypes._types_map_default: .c text/plain, .sh \
         application/x-sh, .xml text/xml) on every machine, and for extensions missing \
         from it the mime_guess crate's type (.rs text/x-rust, .toml text/x-toml), else \
         application/octet-stream. The affected extensions are computed at test start \
         with the same Python (built-in vs. effective guess).",
    ),
    (
        Quirk::ConnectionTokenList,
        "Compares the whole `Connection` value: `keep-alive, Upgrade` from an HTTP/1.0 \
         client is neither `keep-alive` nor `close`, so the connection closes; \
         `Upgrade, close` from an HTTP/1.1 client is not `close`, so it stays open.",
        "Reads `Connection` as a token list (RFC 9110 7.6.1): `keep-alive, Upgrade` keeps \
         the connection in HTTP/1.1 mode and says `Connection: keep-alive`; `Upgrade, \
         close` closes it.",
    ),
    (
        Quirk::FileValidators,
        "Sends neither `ETag` nor `Accept-Ranges` (and ignores `Range`, `If-Match`, \
         `If-None-Match`); in HTTP/1.1 mode it closes a connection the client asked to \
         close without saying `Connection: close` (it says so only on errors).",
        "File responses carry a strong `ETag` (inode, size, mtime) and `Accept-Ranges: \
         bytes`, and an HTTP/1.1 response after which the connection ends says \
         `Connection: close` (RFC 9112 9.6). Wherever tinyserve adds them and Python has \
         none, they are checked to be well-formed and left out of the comparison; \
         everything else must still match. Counted per exchange, alongside the case's \
         own classification.",
    ),
    (
        Quirk::CgiOutputHeader,
        "Sends `200 Script output follows` and then the script's output as it is: a \
         `Status:` or `Location:` line goes to the client as a header and the status \
         stays 200.",
        "Parses the script's header block (RFC 3875 6.2): `Status: NNN reason` sets the \
         status line (the standard phrase when the script gives none), `Location:` with \
         an absolute URL gives 302 Found, a local `Location: /path` is served in place \
         (RFC 3875 6.2.2); the other header lines are passed on in order, the body \
         follows (none for 1xx/204/304).",
    ),
    (
        Quirk::CgiFraming,
        "Sends no Content-Length: the body ends when the connection does (in HTTP/1.1 \
         mode the connection is then kept, so a client cannot find the end).",
        "Frames the body: the script's own Content-Length, else chunked to an HTTP/1.1 \
         client that keeps the connection, else closes (with `Connection: close` in \
         HTTP/1.1 mode). Script headers and de-chunked bodies are compared with \
         Python's; the framing headers are checked, not compared.",
    ),
    (
        Quirk::CgiHead,
        "Runs the script for HEAD and sends its whole output, body included.",
        "Runs the script and sends its header block only (same status line and headers, \
         no body).",
    ),
    (
        Quirk::CgiInvalidHeader,
        "Sends `200 Script output follows` and whatever the script printed, even with no \
         header block at all.",
        "A script whose output does not start with a valid header block (or that prints \
         nothing) gets 502 with the standard error page and `Connection: close`.",
    ),
    (
        Quirk::CgiPathInfoDecodedOnce,
        "Percent-decodes the path once to find the script and again for PATH_INFO and \
         PATH_TRANSLATED (`/env.sh/a%2520b/` gives PATH_INFO `/a b/`), and searched for \
         the script with that second decoding too, which let `%252e%252e` become `..`.",
        "Decodes exactly once (RFC 3875 4.1.5): PATH_INFO `/a%20b/`. A script never \
         sees a `..` that the request did not spell out, and only files inside a CGI \
         directory run.",
    ),
    (
        Quirk::StrictHeaders,
        "Stops reading headers quietly at the first line that is not `name: value` \
         (no colon, a space in the name, an obs-fold continuation) and takes what \
         follows for the body; a second Host line is accepted.",
        "Answers 400 with the standard error page and closes (RFC 9112 2.2, 3.2, 5): \
         a dropped line could be a Content-Length, and the body would then be read as \
         a second request.",
    ),
    (
        Quirk::RepeatedDateIgnored,
        "Reads the first of two `If-Modified-Since` lines (a future date there gives \
         304, whatever the second says).",
        "Ignores the condition (RFC 9110 13.1.3: a field value with more than one member \
         MUST be ignored) and answers 200 with the file.",
    ),
    (
        Quirk::AbsoluteForm,
        "Looks for a file named `http:/127.0.0.1/a.txt` and answers 404.",
        "Serves the path of the absolute-form target, `/a.txt` (RFC 9112 3.2.2: a server \
         MUST accept it); the answer is the one the origin-form target gets.",
    ),
];

impl Quirk {
    /// Whether this is one of the CGI rows of the table.
    fn is_cgi(self) -> bool {
        matches!(
            self,
            Quirk::CgiOutputHeader
                | Quirk::CgiFraming
                | Quirk::CgiHead
                | Quirk::CgiInvalidHeader
                | Quirk::CgiPathInfoDecodedOnce
        )
    }

    /// Whether the quirk shows in this mode.
    fn applies(self, mode: &str) -> bool {
        match self {
            Quirk::KeepAliveHeader | Quirk::ConnectionTokenList => mode == "HTTP/1.1",
            _ => true,
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

/// What Python is expected to answer (a sanity check on the corpus itself, so
/// that two identical failures are not mistaken for coverage). For streams of
/// several responses (100 Continue, pipelining) this is the LAST response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Py {
    /// A response with a status line and this code.
    Status(u16),
    /// A body-only (HTTP/0.9 style) answer.
    BodyOnly,
    /// Connection closed without any byte.
    Nothing,
}

struct Case {
    name: String,
    req: Vec<u8>,
    /// Expected Python answer, per mode (index into MODES).
    py: [Py; 2],
    /// Expected number of responses from Python per mode (None: don't check).
    py_count: [Option<usize>; 2],
    quirk: Option<Quirk>,
}

impl Case {
    fn quirk(mut self, q: Quirk) -> Case {
        self.quirk = Some(q);
        self
    }
    /// Overrides Python's expected (last) answer in HTTP/1.1 mode.
    fn py11(mut self, py: Py) -> Case {
        self.py[1] = py;
        self
    }
    /// Expected number of responses from Python in HTTP/1.0 and HTTP/1.1 mode.
    fn count(mut self, m10: usize, m11: usize) -> Case {
        self.py_count = [Some(m10), Some(m11)];
        self
    }
}

fn case(name: impl Into<String>, req: impl AsRef<[u8]>, py: Py) -> Case {
    Case {
        name: name.into(),
        req: req.as_ref().to_vec(),
        py: [py, py],
        py_count: [None, None],
        quirk: None,
    }
}

/// `METHOD PATH VERSION\r\n` + headers + `\r\n`.
fn req(line: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = line.as_bytes().to_vec();
    r.extend_from_slice(b"\r\n");
    for h in headers {
        r.extend_from_slice(h.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A GET/HEAD/... case named after its request line.
fn line(l: &str, py: Py) -> Case {
    case(l, req(l, &[]), py)
}

fn bytes_cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

use Py::{BodyOnly, Nothing, Status};

#[allow(clippy::vec_init_then_push)]
fn corpus(mime: &HashMap<String, PyMime>) -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();

    // --- basics ---------------------------------------------------------
    v.push(line("GET / HTTP/1.0", Status(200)));
    v.push(line("GET / HTTP/1.1", Status(200)));
    v.push(line("HEAD / HTTP/1.0", Status(200)));
    v.push(line("HEAD / HTTP/1.1", Status(200)));
    v.push(case(
        "GET / HTTP/1.1 with Host",
        req("GET / HTTP/1.1", &["Host: 127.0.0.1"]),
        Status(200),
    ));

    // --- every fixture file ------------------------------------------------
    for (name, _) in ROOT_FILES {
        let c = line(&format!("GET /{name} HTTP/1.1"), Status(200));
        v.push(match mime.get(*name) {
            Some(m) if m.system_dependent() => c.quirk(Quirk::SystemMimeTypes),
            _ => c,
        });
    }
    for name in ["prog.c", "doc.xml"] {
        let c = line(&format!("HEAD /{name} HTTP/1.0"), Status(200));
        v.push(match mime.get(name) {
            Some(m) if m.system_dependent() => c.quirk(Quirk::SystemMimeTypes),
            _ => c,
        });
    }
    v.push(line("GET /big.bin HTTP/1.1", Status(200)));
    v.push(line("HEAD /big.bin HTTP/1.0", Status(200)));
    v.push(line("HEAD /a.txt HTTP/1.1", Status(200)));
    v.push(line("HEAD /a.txt HTTP/1.0", Status(200)));

    // --- directories without slash: 301 ------------------------------------
    v.push(line("GET /list HTTP/1.1", Status(301)));
    v.push(line("GET /list HTTP/1.0", Status(301)));
    v.push(line("HEAD /list HTTP/1.1", Status(301)));
    v.push(line("GET /list?x=1 HTTP/1.1", Status(301)));
    v.push(line("GET /list?x=1&y=%20z#frag HTTP/1.0", Status(301)));
    v.push(line("GET /list#frag HTTP/1.0", Status(301)));
    v.push(line("GET //list HTTP/1.1", Status(301)));
    v.push(line("GET ///list HTTP/1.1", Status(301)));
    v.push(line("GET //example.com/%2e%2e HTTP/1.1", Status(301)));
    v.push(line("GET //example.com/.. HTTP/1.1", Status(301)));
    v.push(line("GET /sub/../../.. HTTP/1.1", Status(301)));
    v.push(line("GET /dir%20with%20space HTTP/1.0", Status(301)));
    v.push(line("GET /list/linkdir HTTP/1.1", Status(301)));
    v.push(line("GET /withindex HTTP/1.1", Status(301)));
    v.push(line("GET /idxdir/index.html HTTP/1.1", Status(301)));
    v.push(line("GET /list/%73ub HTTP/1.1", Status(301)));

    // --- index pages -------------------------------------------------------
    v.push(line("GET /withindex/ HTTP/1.1", Status(200)));
    v.push(line("HEAD /withindex/ HTTP/1.0", Status(200)));
    v.push(line("GET /withindex/?q=1 HTTP/1.1", Status(200)));
    v.push(line("GET /withindex/index.html HTTP/1.1", Status(200)));
    v.push(line("GET /htmonly/ HTTP/1.1", Status(200)));
    v.push(line("GET /idxdir/ HTTP/1.1", Status(200)));
    v.push(line("GET /idxdir/index.html/ HTTP/1.1", Status(200)));

    // --- listings (full body compared) --------------------------------------
    v.push(line("GET /list/ HTTP/1.1", Status(200)));
    v.push(line("HEAD /list/ HTTP/1.1", Status(200)));
    v.push(line("GET /list/?sort=x HTTP/1.0", Status(200)));
    v.push(line("GET /list/#frag HTTP/1.0", Status(200)));
    v.push(line("GET /list/sub/ HTTP/1.1", Status(200)));
    v.push(line("GET /list/linkdir/ HTTP/1.1", Status(200)));
    v.push(line("GET /list/empty/ HTTP/1.1", Status(200)));
    v.push(line("GET /list/%3Cscript%3E/../ HTTP/1.0", Status(200)));
    v.push(line("GET /list/%ff/../ HTTP/1.0", Status(200)));
    v.push(line("GET /list/./ HTTP/1.0", Status(200)));
    v.push(line("GET /list// HTTP/1.0", Status(200)));
    v.push(line("GET /dir%20with%20space/ HTTP/1.0", Status(200)));
    v.push(line("GET /%6c%69%73%74/ HTTP/1.1", Status(200)));
    v.push(line("GET /sub/../../../ HTTP/1.1", Status(200)));
    v.push(line("GET /list/%26amp;/../ HTTP/1.1", Status(200)));

    // --- 404s ---------------------------------------------------------------
    v.push(line("GET /nonexistent HTTP/1.0", Status(404)));
    v.push(line("GET /nonexistent HTTP/1.1", Status(404)));
    v.push(line("HEAD /nonexistent HTTP/1.1", Status(404)));
    v.push(line("GET /list/nonexistent/ HTTP/1.1", Status(404)));
    v.push(line("GET /a.txt/ HTTP/1.1", Status(404)));
    v.push(line("GET /index.html/ HTTP/1.1", Status(404)));
    v.push(line("GET /withindex/index.html/ HTTP/1.1", Status(404)));
    v.push(line("GET /list/dangling HTTP/1.1", Status(404)));
    v.push(line("GET /a.txt/x HTTP/1.1", Status(404)));
    v.push(line(
        "GET /%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.0",
        Status(404),
    ));

    // --- traversal ------------------------------------------------------------
    v.push(line("GET /../../etc/passwd HTTP/1.1", Status(404)));
    v.push(line("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1", Status(404)));
    v.push(line("GET /..%2f..%2fetc/passwd HTTP/1.1", Status(404)));
    v.push(line("GET /..\\..\\etc\\passwd HTTP/1.1", Status(404)));
    v.push(line("GET /%5c..%5c..%5cetc%5cpasswd HTTP/1.1", Status(404)));
    v.push(line("GET /..%5c..%5cetc%5cpasswd HTTP/1.1", Status(404)));
    v.push(line("GET /list/../a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/%2e%2e/a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /nonexistent/../a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/sub/../../a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /../a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /.%2e/a.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/..%2fa.txt HTTP/1.1", Status(200)));
    v.push(line("GET /./a.txt HTTP/1.1", Status(200)));

    // --- percent-encoding and awkward names --------------------------------------
    v.push(line("GET /list/sp%20ace.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/sp ace.txt HTTP/1.0", Status(400)));
    v.push(line("GET /list/%C3%BCn%C3%AF.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/%c3%bcn%c3%af.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/a%26b.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/a&b.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/%3Cx%3E.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/<x>.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/pct%2541.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/pct%41.txt HTTP/1.1", Status(404)));
    v.push(line("GET /list/q%22uote%27.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/a%5Cb.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/a\\b.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/bad%ED%B3%BF.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/bad%FF.txt HTTP/1.1", Status(404)).quirk(Quirk::NonUtf8PathByte));
    v.push(line("GET /list/bad%ff.txt HTTP/1.0", Status(404)).quirk(Quirk::NonUtf8PathByte));
    v.push(line("HEAD /list/bad%FF.txt HTTP/1.1", Status(404)).quirk(Quirk::NonUtf8PathByte));
    v.push(line("GET /list/%FFnope.txt HTTP/1.1", Status(404)));
    v.push(line("GET /list/link.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/secret.txt HTTP/1.1", Status(200)));
    v.push(line("GET /list/gamma.TXT HTTP/1.1", Status(200)));
    v.push(line("GET /%61.txt HTTP/1.1", Status(200)));
    v.push(line("GET /a%2etxt HTTP/1.1", Status(200)));
    v.push(line("GET /a.txt%3Fx HTTP/1.1", Status(404)));
    v.push(line("GET /list/%zz HTTP/1.1", Status(404)));
    v.push(line("GET /list/% HTTP/1.1", Status(404)));
    v.push(line("GET /a%0d%0aX-Injected:%20y HTTP/1.0", Status(404)));
    v.push(line("GET /list%0d%0aX-Injected:%20y HTTP/1.0", Status(404)));
    v.push(line(
        "GET /list?%0d%0aX-Injected:%20y HTTP/1.0",
        Status(301),
    ));

    // --- query and fragment ------------------------------------------------
    v.push(line("GET /a.txt?x#y HTTP/1.1", Status(200)));
    v.push(line("GET /a.txt? HTTP/1.1", Status(200)));
    v.push(line("GET /a.txt# HTTP/1.1", Status(200)));
    v.push(line("GET /a.txt?x=/../../etc/passwd HTTP/1.1", Status(200)));
    v.push(line("GET /a.txt#/../x HTTP/1.1", Status(200)));

    // --- methods -------------------------------------------------------------
    v.push(line("POST / HTTP/1.0", Status(501)));
    v.push(case(
        "POST /a.txt HTTP/1.1 with body",
        b"POST /a.txt HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        Status(501),
    ));
    v.push(line("PUT /a.txt HTTP/1.1", Status(501)));
    v.push(line("DELETE /a.txt HTTP/1.1", Status(501)));
    v.push(line("OPTIONS * HTTP/1.1", Status(501)));
    v.push(line("OPTIONS / HTTP/1.0", Status(501)));
    v.push(line("BREW /pot HTTP/1.1", Status(501)));
    v.push(line("PATCH /a.txt HTTP/1.1", Status(501)));
    v.push(line("TRACE / HTTP/1.1", Status(501)));
    v.push(line("CONNECT example.com:443 HTTP/1.1", Status(501)));
    v.push(line("get / HTTP/1.1", Status(501)));
    v.push(line("Head / HTTP/1.1", Status(501)));
    v.push(line("GE'T / HTTP/1.1", Status(501)));
    v.push(line("G\\ET / HTTP/1.1", Status(501)));
    v.push(line("G<b>T / HTTP/1.1", Status(501)));
    v.push(case(
        "non-ASCII method GÉT",
        req("GÉT / HTTP/1.1", &[]),
        Status(501),
    ));
    v.push(line("GET * HTTP/1.1", Status(404)));
    v.push(line("GET a.txt HTTP/1.0", Status(200)));
    v.push(line("GET http://127.0.0.1/a.txt HTTP/1.1", Status(404)).quirk(Quirk::AbsoluteForm));
    v.push(
        line("HEAD HTTP://127.0.0.1:8000/a.txt HTTP/1.1", Status(404)).quirk(Quirk::AbsoluteForm),
    );

    // --- versions ------------------------------------------------------------
    v.push(line("GET /a.txt HTTP/1.0", Status(200)));
    v.push(line("GET /a.txt HTTP/1.2", Status(200)));
    v.push(line("GET /a.txt HTTP/01.01", Status(200)));
    v.push(line("GET /a.txt HTTP/1.10", Status(200)));
    v.push(line("GET /a.txt HTTP/0.9", BodyOnly));
    v.push(line("GET /nonexistent HTTP/0.9", BodyOnly));
    v.push(line("GET /a.txt HTTP/2.0", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/3.0", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/3", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/a.b", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt http/1.1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/1.1.1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/12345678901.1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt HTTP/+1.1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET /a.txt GARBAGE", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET / HTTP/ 1.1", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("HEAD / HTTP/3", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("POST / HTTP/2.0", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET / x y", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));

    // --- HTTP/0.9 and word counts ---------------------------------------------
    v.push(case("HTTP/0.9 GET /", b"GET /\r\n", BodyOnly));
    v.push(case("HTTP/0.9 GET /a.txt", b"GET /a.txt\r\n", BodyOnly));
    // A redirect has no body and HTTP/0.9 has no headers: nothing at all.
    v.push(case(
        "HTTP/0.9 GET /list (dir, no slash)",
        b"GET /list\r\n",
        Nothing,
    ));
    v.push(case(
        "HTTP/0.9 GET /nonexistent",
        b"GET /nonexistent\r\n",
        BodyOnly,
    ));
    v.push(case("HTTP/0.9 POST /", b"POST /\r\n", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(case("HTTP/0.9 HEAD /", b"HEAD /\r\n", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(case("HTTP/0.9 get /", b"get /\r\n", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(case("one word GET", b"GET\r\n", BodyOnly).quirk(Quirk::ErrorWithoutStatusLine));
    v.push(line("GET / x HTTP/1.1", Status(400)));
    v.push(line("GET /a b HTTP/1.0", Status(400)));
    v.push(line("GET / a b HTTP/1.1", Status(400)));
    v.push(line("GET /it's HTTP/1.0 HTTP/1.0", Status(400)));
    v.push(line("GET /back\\slash x HTTP/1.0", Status(400)));

    // --- long lines and header counts ---------------------------------------------
    {
        // Request line of exactly 65536 bytes including CRLF: accepted (the
        // name is too long for the file system: 404).
        let k = 65536 - "GET /".len() - " HTTP/1.0\r\n".len();
        let l = format!("GET /{} HTTP/1.0", "a".repeat(k));
        v.push(case(
            "request line of 65536 bytes",
            req(&l, &[]),
            Status(404),
        ));
        let l = format!("GET /{} HTTP/1.0", "a".repeat(k + 1));
        v.push(case(
            "request line of 65537 bytes (414)",
            req(&l, &[]),
            Status(414),
        ));
        let l = format!("GET /{} HTTP/1.1", "a".repeat(100_000));
        v.push(case(
            "request line of 100k bytes (414)",
            req(&l, &[]),
            Status(414),
        ));

        let vlen = 65536 - "X-Long: ".len() - 2;
        let h = format!("X-Long: {}", "v".repeat(vlen));
        v.push(case(
            "header line of 65536 bytes",
            req("GET /a.txt HTTP/1.1", &[&h]),
            Status(200),
        ));
        let h = format!("X-Long: {}", "v".repeat(vlen + 1));
        v.push(case(
            "header line of 65537 bytes (431)",
            req("GET /a.txt HTTP/1.1", &[&h]),
            Status(431),
        ));

        for (n, st) in [(99, 200), (100, 431), (101, 431)] {
            let hs: Vec<String> = (0..n).map(|i| format!("X-H{i}: v{i}")).collect();
            let hr: Vec<&str> = hs.iter().map(|s| s.as_str()).collect();
            v.push(case(
                format!("{n} headers"),
                req("GET /a.txt HTTP/1.1", &hr),
                Status(st),
            ));
        }
    }

    // --- conditional requests --------------------------------------------------
    let ims = |name: &str, path: &str, headers: &[&str], st: u16| {
        case(
            format!("If-Modified-Since: {name} ({path})"),
            req(&format!("GET {path} HTTP/1.1"), headers),
            Status(st),
        )
    };
    v.push(ims(
        "future",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
        304,
    ));
    v.push(ims(
        "past",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"],
        200,
    ));
    v.push(ims(
        "equal to mtime",
        "/a.txt",
        &[&format!("If-Modified-Since: {FIXTURE_MTIME_HTTP}")],
        304,
    ));
    v.push(ims(
        "1 s before mtime",
        "/a.txt",
        &["If-Modified-Since: Thu, 04 Mar 2021 05:06:06 GMT"],
        200,
    ));
    v.push(ims(
        "garbage",
        "/a.txt",
        &["If-Modified-Since: not a date"],
        200,
    ));
    v.push(ims("empty", "/a.txt", &["If-Modified-Since:"], 200));
    v.push(ims(
        "future + If-None-Match",
        "/a.txt",
        &[
            "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
            "If-None-Match: \"x\"",
        ],
        200,
    ));
    v.push(ims(
        "future + empty If-None-Match",
        "/a.txt",
        &[
            "If-None-Match:",
            "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
        ],
        200,
    ));
    v.push(ims(
        "future +0000",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 +0000"],
        304,
    ));
    v.push(ims(
        "future -0000",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 -0000"],
        304,
    ));
    v.push(ims(
        "future +0100 (ignored)",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 +0100"],
        200,
    ));
    v.push(ims(
        "future EST (ignored)",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 EST"],
        200,
    ));
    v.push(ims(
        "future UTC",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 UTC"],
        304,
    ));
    v.push(ims(
        "future no zone",
        "/a.txt",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00"],
        304,
    ));
    v.push(ims(
        "RFC 850 year 99",
        "/a.txt",
        &["If-Modified-Since: Thursday, 01-Jan-99 00:00:00 GMT"],
        200,
    ));
    v.push(ims(
        "RFC 850 year 50",
        "/a.txt",
        &["If-Modified-Since: Saturday, 01-Jan-50 00:00:00 GMT"],
        304,
    ));
    v.push(ims(
        "asctime future",
        "/a.txt",
        &["If-Modified-Since: Thu Jan  1 00:00:00 2099"],
        304,
    ));
    v.push(ims(
        "lowercase header name",
        "/a.txt",
        &["if-modified-since: Thu, 01 Jan 2099 00:00:00 GMT"],
        304,
    ));
    v.push(
        ims(
            "two headers, first future",
            "/a.txt",
            &[
                "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
                "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
            ],
            304,
        )
        .quirk(Quirk::RepeatedDateIgnored),
    );
    v.push(ims(
        "future on a listing",
        "/list/",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
        200,
    ));
    v.push(ims(
        "future on an index dir",
        "/withindex/",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
        304,
    ));
    v.push(ims(
        "future on a 404",
        "/nonexistent",
        &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
        404,
    ));
    v.push(case(
        "HEAD with If-Modified-Since future",
        req(
            "HEAD /a.txt HTTP/1.0",
            &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
        ),
        Status(304),
    ));

    // --- Connection and Expect ------------------------------------------------------
    v.push(case(
        "Connection: close, HTTP/1.1",
        req("GET /a.txt HTTP/1.1", &["Connection: close"]),
        Status(200),
    ));
    v.push(case(
        "Connection: close, HTTP/1.0",
        req("GET /a.txt HTTP/1.0", &["Connection: close"]),
        Status(200),
    ));
    v.push(case(
        "Connection: keep-alive, HTTP/1.1",
        req("GET /a.txt HTTP/1.1", &["Connection: keep-alive"]),
        Status(200),
    ));
    v.push(
        case(
            "Connection: keep-alive, HTTP/1.0",
            req("GET /a.txt HTTP/1.0", &["Connection: keep-alive"]),
            Status(200),
        )
        .quirk(Quirk::KeepAliveHeader),
    );
    v.push(
        case(
            "Connection: Keep-Alive, HTTP/1.0 listing",
            req("GET /list/ HTTP/1.0", &["Connection: Keep-Alive"]),
            Status(200),
        )
        .quirk(Quirk::KeepAliveHeader),
    );
    v.push(
        case(
            "Connection: keep-alive, HTTP/1.0 301",
            req("GET /list HTTP/1.0", &["Connection: keep-alive"]),
            Status(301),
        )
        .quirk(Quirk::KeepAliveHeader),
    );
    v.push(
        case(
            "Connection: keep-alive, HTTP/1.0 404",
            req("GET /nonexistent HTTP/1.0", &["Connection: keep-alive"]),
            Status(404),
        )
        .quirk(Quirk::KeepAliveHeader),
    );
    v.push(
        case(
            "Connection: keep-alive, HTTP/1.0 304",
            req(
                "GET /a.txt HTTP/1.0",
                &[
                    "Connection: keep-alive",
                    "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
                ],
            ),
            Status(304),
        )
        .quirk(Quirk::KeepAliveHeader),
    );
    v.push(
        case(
            "Connection: keep-alive, Upgrade",
            req("GET /a.txt HTTP/1.0", &["Connection: keep-alive, Upgrade"]),
            Status(200),
        )
        .quirk(Quirk::ConnectionTokenList),
    );
    v.push(case(
        "Connection: Keep-Alive , upgrade (404)",
        req(
            "GET /nonexistent HTTP/1.0",
            &["Connection: Keep-Alive , upgrade"],
        ),
        Status(404),
    ));
    v.push(case(
        "Connection: Upgrade, close, HTTP/1.1",
        req("GET /a.txt HTTP/1.1", &["Connection: Upgrade, close"]),
        Status(200),
    ));
    v.push(case(
        "Connection: CLOSE",
        req("GET /a.txt HTTP/1.1", &["Connection: CLOSE"]),
        Status(200),
    ));
    v.push(
        case(
            "Expect: 100-continue, HTTP/1.1",
            req("GET /a.txt HTTP/1.1", &["Expect: 100-continue"]),
            Status(200),
        )
        .count(1, 2),
    );
    v.push(
        case(
            "Expect: 100-Continue (case), HTTP/1.1",
            req("GET /a.txt HTTP/1.1", &["Expect: 100-Continue"]),
            Status(200),
        )
        .count(1, 2),
    );
    v.push(
        case(
            "Expect: 100-continue, HTTP/1.0",
            req("GET /a.txt HTTP/1.0", &["Expect: 100-continue"]),
            Status(200),
        )
        .count(1, 1),
    );
    v.push(
        case(
            "Expect: 100-continue, POST with body",
            b"POST /a.txt HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
            Status(501),
        )
        .count(1, 2),
    );
    v.push(
        case(
            "Expect: 100-continue, 404",
            req("GET /nonexistent HTTP/1.1", &["Expect: 100-continue"]),
            Status(404),
        )
        .count(1, 2),
    );
    v.push(
        case(
            "Expect: something-else",
            req("GET /a.txt HTTP/1.1", &["Expect: something-else"]),
            Status(200),
        )
        .count(1, 1),
    );

    // --- other header shapes ----------------------------------------------------------
    v.push(
        case(
            "header without colon",
            req("GET /a.txt HTTP/1.1", &["NoColonHere"]),
            Status(200),
        )
        .quirk(Quirk::StrictHeaders),
    );
    v.push(
        case(
            "obs-fold header",
            req("GET /a.txt HTTP/1.1", &["X-Folded: a", " b"]),
            Status(200),
        )
        .quirk(Quirk::StrictHeaders),
    );
    v.push(
        case(
            "header name with space",
            req("GET /a.txt HTTP/1.1", &["X Bad: v"]),
            Status(200),
        )
        .quirk(Quirk::StrictHeaders),
    );
    v.push(
        case(
            "duplicate Host",
            req("GET /a.txt HTTP/1.1", &["Host: a", "Host: b"]),
            Status(200),
        )
        .quirk(Quirk::StrictHeaders),
    );

    // --- whitespace and line endings ----------------------------------------------------
    v.push(case(
        "tabs in request line",
        b"GET\t/a.txt\tHTTP/1.1\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "multiple spaces in request line",
        b"GET   /a.txt   HTTP/1.1\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "leading space in request line",
        b" GET /a.txt HTTP/1.0\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "trailing spaces in request line",
        b"GET /a.txt HTTP/1.0   \r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "vertical tab separators",
        b"GET\x0b/a.txt\x0bHTTP/1.0\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "form feed separators",
        b"GET\x0c/a.txt\x0cHTTP/1.0\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "NBSP (0xA0) separators",
        b"GET\xa0/a.txt\xa0HTTP/1.0\r\n\r\n",
        Status(200),
    ));
    v.push(case(
        "bare CR inside request line",
        b"GET /a\rb HTTP/1.0\r\n\r\n",
        Status(400),
    ));
    v.push(case(
        "LF-only line endings",
        b"GET /a.txt HTTP/1.0\nX-A: b\n\n",
        Status(200),
    ));
    v.push(case(
        "no blank line, then EOF",
        b"GET /a.txt HTTP/1.0\r\n",
        Status(200),
    ));
    v.push(case(
        "no line ending at all, then EOF",
        b"GET /a.txt HTTP/1.0",
        Status(200),
    ));
    v.push(case("empty request line", b"\r\n", Nothing));
    v.push(case("whitespace-only request line", b"  \t \r\n", Nothing));
    v.push(case("no bytes at all", b"", Nothing));
    v.push(case(
        "empty line before request",
        b"\r\nGET /a.txt HTTP/1.0\r\n\r\n",
        Nothing,
    ));

    // --- NUL bytes ----------------------------------------------------------------
    v.push(line("GET /a.txt%00 HTTP/1.1", Nothing).quirk(Quirk::NulInPath));
    v.push(line("GET /%00 HTTP/1.0", Nothing).quirk(Quirk::NulInPath));
    v.push(line("HEAD /list/%00.txt HTTP/1.1", Nothing).quirk(Quirk::NulInPath));
    v.push(line("GET /list/%00/ HTTP/1.1", Status(404)));

    // --- raw non-ASCII bytes in the path -------------------------------------------------
    v.push(
        case(
            "raw UTF-8 path /list/ünï.txt",
            bytes_cat(&[b"GET /list/", "ünï".as_bytes(), b".txt HTTP/1.0\r\n\r\n"]),
            Status(404),
        )
        .quirk(Quirk::RawNonAsciiPath),
    );
    v.push(
        case(
            "raw 0xFF path /list/bad\\xff.txt",
            b"GET /list/bad\xff.txt HTTP/1.1\r\n\r\n",
            Status(404),
        )
        .quirk(Quirk::NonUtf8PathByte),
    );

    // --- pipelining (one write, several requests) -------------------------------------------
    v.push(
        case(
            "pipelined 2 x HTTP/1.1",
            b"GET /a.txt HTTP/1.1\r\n\r\nGET /b.htm HTTP/1.1\r\n\r\n",
            Status(200),
        )
        .count(1, 2),
    );
    v.push(
        case(
            "pipelined HTTP/1.0 then HTTP/1.1",
            b"GET /a.txt HTTP/1.0\r\n\r\nGET /b.htm HTTP/1.1\r\n\r\n",
            Status(200),
        )
        .count(1, 1),
    );
    v.push(
        case(
            "pipelined 3, middle Connection: close",
            b"GET /a.txt HTTP/1.1\r\n\r\nGET /list HTTP/1.1\r\nConnection: close\r\n\r\nGET /b.htm HTTP/1.1\r\n\r\n",
            Status(200),
        )
        .py11(Status(301))
        .count(1, 2),
    );
    v.push(
        case(
            "pipelined GET then bad request",
            b"GET /a.txt HTTP/1.1\r\n\r\nGET / x HTTP/1.1\r\n\r\n",
            Status(200),
        )
        .py11(Status(400))
        .count(1, 2),
    );
    v.push({
        let mut c = case(
            "pipelined 404 then GET",
            b"GET /nope HTTP/1.1\r\n\r\nGET /a.txt HTTP/1.1\r\n\r\n",
            Status(404),
        );
        c.py_count = [Some(1), Some(1)];
        c
    });
    v.push(
        case(
            "pipelined GET then empty line",
            b"GET /a.txt HTTP/1.1\r\n\r\n\r\n",
            Status(200),
        )
        .count(1, 1),
    );

    v
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

/// Headers that are never compared.
fn ignored_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("Server") || name.eq_ignore_ascii_case("Date")
}

/// The headers compared: all but `Server`, `Date` and those in `ignore`.
fn filtered_headers(r: &Response, ignore: &[&str]) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| !(ignored_header(n) || ignore.iter().any(|i| n.eq_ignore_ascii_case(i))))
        .cloned()
        .collect()
}

fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Headers tinyserve adds to file responses (see Quirk::FileValidators).
const VALIDATOR_HEADERS: [&str; 3] = ["ETag", "Accept-Ranges", "Connection"];

/// The validator headers tinyserve sent where Python sent none, each
/// checked for form; returns (names to leave out, problems).
fn added_validators(p: &Response, t: &Response) -> (Vec<&'static str>, Vec<String>) {
    let mut names = Vec::new();
    let mut problems = Vec::new();
    for h in VALIDATOR_HEADERS {
        if p.header(h).is_some() {
            continue;
        }
        let vals = t.headers_all(h);
        // Only `Connection: close` is this addition; `keep-alive` is
        // Quirk::KeepAliveHeader's and is judged there.
        if vals.is_empty() || (h == "Connection" && vals != ["close"]) {
            continue;
        }
        names.push(h);
        let ok = match (h, vals.as_slice()) {
            ("ETag", [v]) => {
                v.len() >= 2
                    && v.starts_with('"')
                    && v.ends_with('"')
                    && !v[1..v.len() - 1].contains('"')
            }
            ("Accept-Ranges", [v]) => *v == "bytes",
            ("Connection", [v]) => *v == "close",
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "validator header {h}: want one {}, got {vals:?}",
                if h == "ETag" {
                    "strong quoted entity tag"
                } else {
                    "\"bytes\""
                }
            ));
        }
    }
    (names, problems)
}

/// True if tinyserve added validator headers to any response of the exchange.
fn exchange_has_added_validators(p: &Side, t: &Side) -> bool {
    match (&p.parsed, &t.parsed) {
        (Ok(pr), Ok(tr)) => pr
            .iter()
            .zip(tr.iter())
            .any(|(a, b)| !added_validators(a, b).0.is_empty()),
        _ => false,
    }
}

/// Differences between two single responses (empty if equal).
fn diff_response(p: &Response, t: &Response, ignore: &[&str]) -> Vec<String> {
    let mut d = Vec::new();
    let (added, problems) = added_validators(p, t);
    d.extend(problems);
    let ignore: Vec<&str> = ignore.iter().copied().chain(added).collect();
    let ignore = ignore.as_slice();
    if p.status_line != t.status_line {
        // Split into version / code / reason phrase so the report can group.
        let what = if p.is_body_only() != t.is_body_only() {
            "status line presence"
        } else if p.status != t.status {
            "status code"
        } else if p.version != t.version {
            "status version"
        } else if COMPARE_REASON_PHRASE {
            "reason phrase"
        } else {
            ""
        };
        if !what.is_empty() {
            d.push(format!(
                "{what}: python {:?} vs tinyserve {:?}",
                p.status_line, t.status_line
            ));
        }
    }
    let ph = filtered_headers(p, ignore);
    let th = filtered_headers(t, ignore);
    if ph != th {
        let mut names: Vec<String> = Vec::new();
        for (n, _) in ph.iter().chain(th.iter()) {
            if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                names.push(n.clone());
            }
        }
        let mut value_diff = false;
        for n in &names {
            if ignore.iter().any(|i| n.eq_ignore_ascii_case(i)) {
                continue;
            }
            let pv: Vec<&str> = p.headers_all(n);
            let tv: Vec<&str> = t.headers_all(n);
            if pv != tv {
                value_diff = true;
                d.push(format!("header {n}: python {pv:?} vs tinyserve {tv:?}"));
            }
        }
        if !value_diff {
            let pn: Vec<&str> = ph.iter().map(|(n, _)| n.as_str()).collect();
            let tn: Vec<&str> = th.iter().map(|(n, _)| n.as_str()).collect();
            d.push(format!(
                "header names/case/order: python {pn:?} vs tinyserve {tn:?}"
            ));
        }
    }
    if p.body != t.body {
        let i = first_diff(&p.body, &t.body);
        let from = i.saturating_sub(20);
        d.push(format!(
            "body: python {} bytes vs tinyserve {} bytes, first difference at byte {i}: python ...{}... vs tinyserve ...{}...",
            p.body.len(),
            t.body.len(),
            escape_bytes(p.body.get(from..).unwrap_or_default(), 80),
            escape_bytes(t.body.get(from..).unwrap_or_default(), 80),
        ));
    }
    d
}

/// One side's exchange, parsed.
struct Side {
    raw: RawExchange,
    parsed: Result<Vec<Response>, String>,
}

impl Side {
    fn run(addr: std::net::SocketAddr, req: &[u8]) -> Side {
        let raw = raw_request_opts(addr, req, true, EXCHANGE_TIMEOUT);
        let parsed = Response::parse_stream(&raw.bytes, is_head_request(req));
        Side { raw, parsed }
    }

    fn summary(&self) -> String {
        let mut s = match &self.parsed {
            Ok(rs) if rs.is_empty() => "<no response>".to_string(),
            Ok(rs) => rs
                .iter()
                .map(|r| r.summary(160))
                .collect::<Vec<_>>()
                .join("  >>next>>  "),
            Err(e) => format!(
                "<unparsable: {e}> raw: {}",
                escape_bytes(&self.raw.bytes, 300)
            ),
        };
        if let Err(e) = &self.raw.end {
            s.push_str(&format!("  [read ended: {e}]"));
        }
        s
    }
}

/// Compares two complete exchanges for equality.
fn diff_exchange(p: &Side, t: &Side, ignore: &[&str]) -> Vec<String> {
    let mut d = Vec::new();
    if p.raw.end.is_ok() != t.raw.end.is_ok() {
        d.push(format!(
            "connection end: python {:?} vs tinyserve {:?}",
            p.raw.end.as_ref().err(),
            t.raw.end.as_ref().err()
        ));
    }
    match (&p.parsed, &t.parsed) {
        (Ok(pr), Ok(tr)) => {
            if pr.len() != tr.len() {
                d.push(format!(
                    "number of responses: python {} vs tinyserve {}",
                    pr.len(),
                    tr.len()
                ));
            }
            for (i, (a, b)) in pr.iter().zip(tr.iter()).enumerate() {
                for x in diff_response(a, b, ignore) {
                    d.push(if pr.len() > 1 || tr.len() > 1 {
                        format!("response #{}: {x}", i + 1)
                    } else {
                        x
                    });
                }
            }
        }
        (Err(e), _) => d.push(format!("python response unparsable: {e}")),
        (_, Err(e)) => d.push(format!("tinyserve response unparsable: {e}")),
    }
    d
}

/// Checks tinyserve's documented behaviour for a deliberate difference.
/// Returns the problems found (empty = behaves as documented).
fn check_quirk(q: Quirk, mode: &str, req: &[u8], fx: &Fixture, p: &Side, t: &Side) -> Vec<String> {
    let mut d = Vec::new();
    let head = is_head_request(req);
    let tr = match &t.parsed {
        Ok(v) => v,
        Err(e) => return vec![format!("tinyserve response unparsable: {e}")],
    };
    let pr = match &p.parsed {
        Ok(v) => v,
        Err(e) => return vec![format!("python response unparsable: {e}")],
    };
    if let Err(e) = &t.raw.end {
        d.push(format!("tinyserve did not close cleanly: {e}"));
    }
    match q {
        Quirk::ErrorWithoutStatusLine => {
            let Some((code, msg)) = pr
                .first()
                .filter(|r| pr.len() == 1 && r.is_body_only())
                .and_then(|r| parse_error_body(&r.body))
            else {
                return vec![format!(
                    "corpus: python did not answer with a body-only error page ({})",
                    p.summary()
                )];
            };
            // The request was rejected before its method was accepted, so
            // Python sends the page even for HEAD. For a HEAD request accept
            // tinyserve either sending the same body or no body at all.
            let as_get = Response::parse_stream(&t.raw.bytes, false);
            let tr: Vec<Response> = match (&as_get, head) {
                (Ok(v), true) if v.len() == 1 && v[0].body == pr[0].body => v.clone(),
                (Ok(v), false) => v.clone(),
                _ => tr.clone(),
            };
            if tr.len() != 1 {
                d.push(format!("expected exactly 1 response, got {}", tr.len()));
            }
            if let Some(r) = tr.first() {
                check_status_line(r, mode, code, msg.as_str(), &mut d);
                if r.body != pr[0].body && !(head && r.body.is_empty()) {
                    d.push(format!(
                        "body differs from python's error page: python {} vs tinyserve {}",
                        escape_bytes(&pr[0].body, 120),
                        escape_bytes(&r.body, 120)
                    ));
                }
                check_error_headers(r, pr[0].body.len(), &mut d);
            }
        }
        Quirk::NulInPath => {
            if !pr.is_empty() {
                return vec![format!(
                    "corpus: python answered a %00 path ({})",
                    p.summary()
                )];
            }
            if tr.len() != 1 {
                d.push(format!("expected exactly 1 response, got {}", tr.len()));
            }
            if let Some(r) = tr.first() {
                check_status_line(r, mode, 404, "File not found", &mut d);
                let page =
                    python_error_body(404, "File not found", "Nothing matches the given URI");
                let want_body: &[u8] = if head { b"" } else { page.as_bytes() };
                if r.body != want_body {
                    d.push(format!(
                        "body: want the standard 404 page, got {}",
                        escape_bytes(&r.body, 120)
                    ));
                }
                check_error_headers(r, page.len(), &mut d);
            }
        }
        Quirk::KeepAliveHeader => {
            d.extend(diff_exchange(p, t, &["Connection"]));
            if let (Some(a), Some(b)) = (pr.last(), tr.last()) {
                let want = a.header("Connection").unwrap_or("keep-alive");
                match b.header("Connection") {
                    Some(v) if v.eq_ignore_ascii_case(want) => {}
                    other => d.push(format!("Connection: want {want:?}, got {other:?}")),
                }
            }
        }
        Quirk::RawNonAsciiPath | Quirk::NonUtf8PathByte => {
            if pr.last().and_then(|r| r.status) != Some(404) {
                return vec![format!(
                    "corpus: python did not answer 404 ({})",
                    p.summary()
                )];
            }
            let path = percent_decode(&request_target(req));
            let rel = path.strip_prefix(b"/").unwrap_or(&path);
            let want = fx
                .read_bytes_path(rel)
                .expect("fixture file for the decoded path");
            match tr.as_slice() {
                [r] => {
                    if r.status != Some(200) {
                        d.push(format!("status: want 200, got {:?}", r.status_line));
                    }
                    let want_body: &[u8] = if head { b"" } else { &want };
                    if r.body != want_body {
                        d.push(format!(
                            "body: want {}, got {}",
                            escape_bytes(want_body, 80),
                            escape_bytes(&r.body, 80)
                        ));
                    }
                    if r.content_length() != Some(want.len()) {
                        d.push(format!(
                            "Content-Length: want {}, got {:?}",
                            want.len(),
                            r.header("Content-Length")
                        ));
                    }
                }
                _ => d.push(format!("expected exactly 1 response, got {}", tr.len())),
            }
        }
        Quirk::SystemMimeTypes => {
            let target = request_target(req);
            let name =
                String::from_utf8_lossy(target.strip_prefix(b"/").unwrap_or(&target)).into_owned();
            let Some(m) = mime_table().get(&name) else {
                return vec![format!("no content type data from python for {name:?}")];
            };
            let py_want = m.effective.as_deref().unwrap_or("application/octet-stream");
            let py_got = pr.last().and_then(|r| r.header("Content-type"));
            if py_got != Some(py_want) {
                return vec![format!(
                    "corpus: python sent Content-type {py_got:?}, its effective table says {py_want:?}"
                )];
            }
            let ts_want = m.tinyserve_type();
            match tr.last().and_then(|r| r.header("Content-type")) {
                Some(v) if !v.is_empty() && v == ts_want => {}
                other => d.push(format!(
                    "Content-type: want {ts_want:?} ({}), got {other:?}",
                    if m.builtin.is_some() {
                        "Python's built-in table"
                    } else {
                        "not in Python's built-in table: mime_guess"
                    }
                )),
            }
            d.extend(diff_exchange(p, t, &["Content-type"]));
        }
        Quirk::StrictHeaders => {
            if pr.last().is_none_or(|r| r.status != Some(200)) {
                return vec![format!(
                    "corpus: python did not answer 200 ({})",
                    p.summary()
                )];
            }
            match tr.as_slice() {
                [r] => match parse_error_body(&r.body) {
                    Some((400, msg)) => {
                        check_status_line(r, mode, 400, &msg, &mut d);
                        check_error_headers(r, r.body.len(), &mut d);
                    }
                    _ => d.push(format!(
                        "want a 400 error page, got {:?}: {}",
                        r.status_line,
                        escape_bytes(&r.body, 100)
                    )),
                },
                _ => d.push(format!("expected exactly 1 response, got {}", tr.len())),
            }
        }
        Quirk::RepeatedDateIgnored => {
            if pr.last().and_then(|r| r.status) != Some(304) {
                return vec![format!(
                    "corpus: python did not answer 304 ({})",
                    p.summary()
                )];
            }
            let want = fx.read_bytes_path(b"a.txt").expect("fixture a.txt");
            match tr.as_slice() {
                [r] if r.status == Some(200) && r.body == want => {}
                [r] => d.push(format!(
                    "want 200 with a.txt, got {:?}: {}",
                    r.status_line,
                    escape_bytes(&r.body, 80)
                )),
                _ => d.push(format!("expected exactly 1 response, got {}", tr.len())),
            }
        }
        Quirk::AbsoluteForm => {
            if pr.last().and_then(|r| r.status) != Some(404) {
                return vec![format!(
                    "corpus: python did not answer 404 ({})",
                    p.summary()
                )];
            }
            let want = fx.read_bytes_path(b"a.txt").expect("fixture a.txt");
            match tr.as_slice() {
                [r] => {
                    if r.status != Some(200) {
                        d.push(format!("status: want 200, got {:?}", r.status_line));
                    }
                    let want_body: &[u8] = if head { b"" } else { &want };
                    if r.body != want_body || r.content_length() != Some(want.len()) {
                        d.push(format!(
                            "want a.txt ({} bytes), got Content-Length {:?}, body {}",
                            want.len(),
                            r.header("Content-Length"),
                            escape_bytes(&r.body, 80)
                        ));
                    }
                }
                _ => d.push(format!("expected exactly 1 response, got {}", tr.len())),
            }
        }
        Quirk::ConnectionTokenList => {
            d.extend(diff_exchange(p, t, &["Connection"]));
            if let (Some(a), Some(b)) = (pr.last(), tr.last()) {
                if a.header("Connection").is_some() {
                    d.push(format!(
                        "corpus: python sent Connection {:?}",
                        a.header("Connection")
                    ));
                }
                if b.header("Connection") != Some("keep-alive") {
                    d.push(format!(
                        "Connection: want \"keep-alive\", got {:?}",
                        b.header("Connection")
                    ));
                }
            }
        }
        // Detected on every exchange by diff_response, never attached to a case.
        Quirk::FileValidators => d.extend(diff_exchange(p, t, &[])),
        Quirk::CgiOutputHeader
        | Quirk::CgiFraming
        | Quirk::CgiHead
        | Quirk::CgiInvalidHeader
        | Quirk::CgiPathInfoDecodedOnce => {
            d.push(format!("CGI quirk {q:?} attached to a static case"));
        }
    }
    d
}

/// Percent-decodes `%XX` escapes (others left as they are), stopping at `?`.
fn percent_decode(target: &[u8]) -> Vec<u8> {
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%'
            && let (Some(h), Some(l)) = (
                path.get(i + 1).copied().and_then(hex),
                path.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Content types: Python's built-in table against the system's
// ---------------------------------------------------------------------------

/// What Python's `SimpleHTTPRequestHandler.guess_type` answers for a file
/// name with only its built-in table (`mimetypes._types_map_default`, as a
/// fresh `mimetypes.MimeTypes()` has it) and as it runs on this machine
/// (after `mimetypes.init()` read /etc/mime.types). `None`: no type known
/// (the handler then sends application/octet-stream).
#[derive(Debug, Clone)]
struct PyMime {
    /// `posixpath.splitext(name)[1]`, e.g. `.c` (empty without one).
    ext: String,
    builtin: Option<String>,
    effective: Option<String>,
}

impl PyMime {
    /// The type depends on the system's tables, or is not in Python's
    /// built-in one (then tinyserve asks mime_guess): the SystemMimeTypes
    /// quirk applies.
    fn system_dependent(&self) -> bool {
        self.ext.len() > 1 && (self.builtin != self.effective || self.builtin.is_none())
    }

    /// What tinyserve sends: the built-in type, else mime_guess's for the
    /// lower-cased extension, else application/octet-stream.
    fn tinyserve_type(&self) -> String {
        if let Some(b) = &self.builtin {
            return b.clone();
        }
        let ext = self.ext.trim_start_matches('.').to_ascii_lowercase();
        mime_guess::from_ext(&ext)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string()
    }
}

static MIME_TABLE: OnceLock<HashMap<String, PyMime>> = OnceLock::new();

fn mime_table() -> &'static HashMap<String, PyMime> {
    MIME_TABLE
        .get_or_init(|| python_mime_table(&ROOT_FILES.iter().map(|(n, _)| *n).collect::<Vec<_>>()))
}

/// Asks the reference Python for [`PyMime`] of each name.
fn python_mime_table(names: &[&str]) -> HashMap<String, PyMime> {
    const SCRIPT: &str = r#"
import sys, posixpath, mimetypes
from http.server import SimpleHTTPRequestHandler as H
builtin = mimetypes.MimeTypes()  # only mimetypes._types_map_default
mimetypes.init()                 # reads /etc/mime.types & co.
def guess(db_guess, path):
    # SimpleHTTPRequestHandler.guess_type
    base, ext = posixpath.splitext(path)
    if ext in H.extensions_map:
        return H.extensions_map[ext]
    ext = ext.lower()
    if ext in H.extensions_map:
        return H.extensions_map[ext]
    return db_guess(path)[0]
bg = getattr(builtin, "guess_file_type", builtin.guess_type)
eg = getattr(mimetypes, "guess_file_type", mimetypes.guess_type)
for name in sys.argv[1:]:
    ext = posixpath.splitext(name)[1]
    print(name, ext or "-", guess(bg, name) or "-", guess(eg, name) or "-", sep="\t")
"#;
    let out = python()
        .command()
        .arg("-c")
        .arg(SCRIPT)
        .args(names)
        .env_remove("PYTHONPATH")
        .output()
        .expect("run python for the content type table");
    assert!(
        out.status.success(),
        "python content type table failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opt = |s: &str| (s != "-").then(|| s.to_string());
    let mut map = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 4, "bad line from python: {l:?}");
        map.insert(
            f[0].to_string(),
            PyMime {
                ext: if f[1] == "-" {
                    String::new()
                } else {
                    f[1].to_string()
                },
                builtin: opt(f[2]),
                effective: opt(f[3]),
            },
        );
    }
    assert_eq!(map.len(), names.len(), "python answered for every name");
    map
}

/// Checks `VERSION CODE REASON` (the reason only if COMPARE_REASON_PHRASE).
fn check_status_line(r: &Response, mode: &str, code: u16, reason: &str, d: &mut Vec<String>) {
    let want_line = format!("{mode} {code} {reason}");
    let ok = if COMPARE_REASON_PHRASE {
        r.status_line.as_deref() == Some(want_line.as_str())
    } else {
        r.version.as_deref() == Some(mode) && r.status == Some(code)
    };
    if !ok {
        let what = if r.status == Some(code) && r.version.as_deref() == Some(mode) {
            "reason phrase"
        } else {
            "status line"
        };
        d.push(format!(
            "{what}: want {want_line:?}, got {:?}",
            r.status_line
        ));
    }
}

/// Headers every tinyserve error response must carry (like Python's).
fn check_error_headers(r: &Response, body_len: usize, d: &mut Vec<String>) {
    if r.header("Content-Type") != Some("text/html;charset=utf-8") {
        d.push(format!(
            "Content-Type: want \"text/html;charset=utf-8\", got {:?}",
            r.header("Content-Type")
        ));
    }
    if r.content_length() != Some(body_len) {
        d.push(format!(
            "Content-Length: want {body_len}, got {:?}",
            r.header("Content-Length")
        ));
    }
    if !r
        .header("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    {
        d.push(format!(
            "Connection: want \"close\", got {:?}",
            r.header("Connection")
        ));
    }
}

/// The second word of the first request line (raw bytes).
fn request_target(req: &[u8]) -> Vec<u8> {
    let line_end = req.iter().position(|&b| b == b'\n').unwrap_or(req.len());
    req[..line_end]
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .nth(1)
        .unwrap_or_default()
        .to_vec()
}

/// Checks Python's answer against the corpus expectation.
fn check_python_expectation(c: &Case, mi: usize, p: &Side) -> Option<String> {
    let rs = match &p.parsed {
        Ok(rs) => rs,
        Err(e) => return Some(format!("python response unparsable: {e}")),
    };
    let got = match rs.last() {
        None => Nothing,
        Some(r) if r.is_body_only() => BodyOnly,
        Some(r) => Status(r.status.unwrap()),
    };
    if got != c.py[mi] {
        return Some(format!(
            "python answered {got:?}, corpus expects {:?}",
            c.py[mi]
        ));
    }
    match c.py_count[mi] {
        Some(n) if rs.len() != n => Some(format!(
            "python sent {} responses, corpus expects {n}",
            rs.len()
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Persistence (keep-alive) table
// ---------------------------------------------------------------------------

/// A persistence probe where tinyserve deliberately differs (in the modes
/// the quirk applies to): the quirk, and whether tinyserve closes.
type PersistenceQuirk = Option<(Quirk, bool)>;

/// Requests sent WITHOUT half-closing: after the (final) response, is the
/// connection closed by the server (within 300 ms) or kept open?
fn persistence_corpus() -> Vec<(&'static str, Vec<u8>, PersistenceQuirk)> {
    let plain: Vec<(&'static str, Vec<u8>)> = vec![
        ("GET HTTP/1.0", req("GET /a.txt HTTP/1.0", &[])),
        ("GET HTTP/1.1", req("GET /a.txt HTTP/1.1", &[])),
        (
            "GET HTTP/1.0 keep-alive",
            req("GET /a.txt HTTP/1.0", &["Connection: keep-alive"]),
        ),
        (
            "GET HTTP/1.1 close",
            req("GET /a.txt HTTP/1.1", &["Connection: close"]),
        ),
        (
            "GET HTTP/1.1 Keep-Alive",
            req("GET /a.txt HTTP/1.1", &["Connection: Keep-Alive"]),
        ),
        ("GET HTTP/1.2", req("GET /a.txt HTTP/1.2", &[])),
        ("HEAD HTTP/1.1", req("HEAD /a.txt HTTP/1.1", &[])),
        ("listing HTTP/1.1", req("GET /list/ HTTP/1.1", &[])),
        ("301 HTTP/1.1", req("GET /list HTTP/1.1", &[])),
        (
            "304 HTTP/1.1",
            req(
                "GET /a.txt HTTP/1.1",
                &["If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"],
            ),
        ),
        ("404 HTTP/1.1", req("GET /nonexistent HTTP/1.1", &[])),
        ("501 HTTP/1.1", req("POST /a.txt HTTP/1.1", &[])),
        ("400 HTTP/1.1", req("GET / x HTTP/1.1", &[])),
        (
            "Expect 100 HTTP/1.1",
            req("GET /a.txt HTTP/1.1", &["Expect: 100-continue"]),
        ),
        (
            "GET HTTP/1.1 Upgrade, keep-alive",
            req("GET /a.txt HTTP/1.1", &["Connection: Upgrade, keep-alive"]),
        ),
    ];
    let mut v: Vec<(&'static str, Vec<u8>, PersistenceQuirk)> =
        plain.into_iter().map(|(n, r)| (n, r, None)).collect();
    v.push((
        "GET HTTP/1.0 keep-alive, Upgrade",
        req("GET /a.txt HTTP/1.0", &["Connection: keep-alive, Upgrade"]),
        Some((Quirk::ConnectionTokenList, false)),
    ));
    v.push((
        "GET HTTP/1.1 Upgrade, close",
        req("GET /a.txt HTTP/1.1", &["Connection: Upgrade, close"]),
        Some((Quirk::ConnectionTokenList, true)),
    ));
    v
}

/// (final status, closed by server?) for one persistence request.
fn persistence_probe(addr: std::net::SocketAddr, r: &[u8]) -> Result<(Option<u16>, bool), String> {
    let mut c = Conn::connect(addr).map_err(|e| e.to_string())?;
    c.timeout = Duration::from_secs(3);
    c.send(r).map_err(|e| e.to_string())?;
    let resp = c.read_final_response(is_head_request(r))?;
    let closed = c.closed_within(Duration::from_millis(300))?;
    Ok((resp.status, closed))
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

struct Outcome {
    name: String,
    mode: &'static str,
    kind: OutcomeKind,
    /// tinyserve added ETag / Accept-Ranges (Quirk::FileValidators).
    validators: bool,
    /// A script's output whose framing tinyserve chose (Quirk::CgiFraming).
    framing: bool,
    details: Vec<String>,
    req: Vec<u8>,
    py: String,
    ts: String,
}

#[derive(PartialEq, Eq, Debug)]
enum OutcomeKind {
    Matched,
    Deliberate(Quirk),
    Mismatch,
    /// Python itself did not answer as the corpus says (harness/corpus bug).
    CorpusError,
}

/// Runs `f` over `0..n` on WORKERS threads.
fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    let workers = std::env::var("TINYSERVE_DIFF_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&w: &usize| w > 0)
        .unwrap_or(WORKERS);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    f(i);
                }
            });
        }
    });
}

/// Prints the deliberate-difference table (the CGI rows, or the others)
/// with how many exchanges of this run showed each.
fn print_deliberate(outcomes: &[Outcome], cgi: bool) {
    eprintln!("\n=== deliberate differences (Python quirks tinyserve does not copy) ===");
    for (i, (q, py, ts)) in DELIBERATE_DIFFERENCES.iter().enumerate() {
        if q.is_cgi() != cgi && *q != Quirk::FileValidators {
            continue;
        }
        let hits = outcomes
            .iter()
            .filter(|o| {
                o.kind == OutcomeKind::Deliberate(*q)
                    || (*q == Quirk::FileValidators && o.validators)
                    || (*q == Quirk::CgiFraming && o.framing)
            })
            .count();
        eprintln!(
            "{}. {:?}\n   python:    {py}\n   tinyserve: {ts}\n   seen in {hits} exchanges",
            i + 1,
            q,
        );
    }
}

/// Prints the mismatches, grouped by kind of difference first.
fn print_mismatches(bad: &[&Outcome]) {
    if bad.is_empty() {
        return;
    }
    // Group by kind of difference ("reason phrase", "header Content-type",
    // "connection end", ...) so that one root cause is easy to spot.
    let mut cats: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for o in bad {
        for d in &o.details {
            let d = d.strip_prefix("response #").map_or(d.as_str(), |r| {
                r.split_once(": ").map_or(r, |(_, rest)| rest)
            });
            let cat = d.split(':').next().unwrap_or(d).to_string();
            let list = cats.entry(cat).or_default();
            let label = format!("{} [{}]", o.name, o.mode);
            if !list.contains(&label) {
                list.push(label);
            }
        }
    }
    eprintln!("\n=== MISMATCH CATEGORIES ===");
    for (cat, list) in &cats {
        let shown: Vec<&str> = list.iter().take(6).map(|s| s.as_str()).collect();
        eprintln!(
            "{:>4} x {cat}: {}{}",
            list.len(),
            shown.join("; "),
            if list.len() > 6 { "; ..." } else { "" }
        );
    }
    eprintln!("\n=== {} MISMATCHES ===", bad.len());
    for o in bad {
        eprintln!(
            "\n--- {} [{}] {}\n    request:   {}",
            if o.kind == OutcomeKind::CorpusError {
                "CORPUS/HARNESS ERROR"
            } else {
                "MISMATCH"
            },
            o.mode,
            o.name,
            escape_bytes(&o.req, 160)
        );
        for d in &o.details {
            eprintln!("    * {d}");
        }
        eprintln!("    python:    {}", o.py);
        eprintln!("    tinyserve: {}", o.ts);
    }
}

#[test]
fn differential_against_python() {
    let started = Instant::now();
    let py = python(); // panics loudly if there is no Python 3
    eprintln!(
        "differential: reference is {} (PYENV_VERSION={:?})",
        py.version, py.pyenv_version
    );
    let selftest = std::env::var_os("TINYSERVE_DIFF_SELFTEST").is_some();
    let only = std::env::var("TINYSERVE_DIFF_ONLY").ok();
    let verbose = std::env::var_os("TINYSERVE_DIFF_VERBOSE").is_some();
    if selftest {
        eprintln!("differential: SELF-TEST mode, python on both sides");
    }

    let fx = fixture_tree();
    let servers: Vec<(Server, Server)> = MODES
        .iter()
        .map(|m| {
            let p = Server::python(&fx.root, m);
            let t = if selftest {
                Server::python(&fx.root, m)
            } else {
                Server::tinyserve(&fx.root, m)
            };
            (p, t)
        })
        .collect();
    for (p, t) in &servers {
        eprintln!(
            "differential: {} on {} | {} on {}",
            p.label, p.port, t.label, t.port
        );
    }

    let mime = mime_table();
    let system_types: Vec<String> = ROOT_FILES
        .iter()
        .filter_map(|(n, _)| {
            mime.get(*n).filter(|m| m.system_dependent()).map(|m| {
                format!(
                    "{} (built-in {:?}, here {:?})",
                    m.ext,
                    m.builtin.as_deref().unwrap_or("-"),
                    m.effective.as_deref().unwrap_or("-")
                )
            })
        })
        .collect();
    eprintln!(
        "differential: content types that depend on the system's tables: {}",
        system_types.join(", ")
    );
    let mut cases = corpus(mime);
    if let Some(o) = &only {
        cases.retain(|c| c.name.contains(o.as_str()));
    }
    {
        let mut seen = std::collections::HashSet::new();
        for c in &cases {
            assert!(
                seen.insert(c.name.clone()),
                "duplicate case name {:?}",
                c.name
            );
        }
    }
    let n = cases.len();
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());

    par_for(n * MODES.len(), |job| {
        let (ci, mi) = (job / MODES.len(), job % MODES.len());
        let c = &cases[ci];
        let mode = MODES[mi];
        let (ps, ts) = &servers[mi];
        let p = Side::run(ps.addr(), &c.req);
        let t = Side::run(ts.addr(), &c.req);
        let (kind, details) = if let Some(e) = check_python_expectation(c, mi, &p) {
            (OutcomeKind::CorpusError, vec![e])
        } else {
            match c.quirk.filter(|q| q.applies(mode) && !selftest) {
                Some(q) => {
                    let d: Vec<String> = check_quirk(q, mode, &c.req, &fx, &p, &t)
                        .into_iter()
                        .map(|x| format!("[{q:?}] {x}"))
                        .collect();
                    if d.is_empty() {
                        (OutcomeKind::Deliberate(q), d)
                    } else {
                        (OutcomeKind::Mismatch, d)
                    }
                }
                None => {
                    let d = diff_exchange(&p, &t, &[]);
                    if d.is_empty() {
                        (OutcomeKind::Matched, d)
                    } else {
                        (OutcomeKind::Mismatch, d)
                    }
                }
            }
        };
        let validators = !selftest && exchange_has_added_validators(&p, &t);
        outcomes.lock().unwrap().push(Outcome {
            name: c.name.clone(),
            mode,
            kind,
            validators,
            framing: false,
            details,
            req: c.req.clone(),
            py: p.summary(),
            ts: t.summary(),
        });
    });

    // Persistence table.
    let pcases = persistence_corpus();
    let pjobs = pcases.len() * MODES.len();
    par_for(pjobs, |job| {
        let (ci, mi) = (job / MODES.len(), job % MODES.len());
        let (name, r, pquirk) = &pcases[ci];
        let (ps, ts) = &servers[mi];
        let p = persistence_probe(ps.addr(), r);
        let t = persistence_probe(ts.addr(), r);
        let pquirk = pquirk.filter(|(q, _)| q.applies(MODES[mi]) && !selftest);
        let fmt = |x: &Result<(Option<u16>, bool), String>| match x {
            Ok((s, closed)) => format!(
                "status {s:?}, {}",
                if *closed {
                    "server closed"
                } else {
                    "kept open"
                }
            ),
            Err(e) => format!("error: {e}"),
        };
        let (kind, details) = match (&p, &t) {
            (Err(e), _) => (
                OutcomeKind::CorpusError,
                vec![format!("python probe failed: {e}")],
            ),
            (Ok(a), _) if pquirk.is_some_and(|(_, ts_closes)| a.1 == ts_closes) => (
                OutcomeKind::CorpusError,
                vec![format!(
                    "python probe: {}, but the quirk says python does the opposite of tinyserve",
                    fmt(&p)
                )],
            ),
            (Ok(a), Ok(b))
                if pquirk.is_some_and(|(_, ts_closes)| a.0 == b.0 && b.1 == ts_closes) =>
            {
                (OutcomeKind::Deliberate(pquirk.unwrap().0), vec![])
            }
            (Ok(a), Ok(b)) if a == b && pquirk.is_none() => (OutcomeKind::Matched, vec![]),
            _ => (
                OutcomeKind::Mismatch,
                vec![format!(
                    "connection persistence: python {} vs tinyserve {}",
                    fmt(&p),
                    fmt(&t)
                )],
            ),
        };
        outcomes.lock().unwrap().push(Outcome {
            name: format!("persistence: {name}"),
            mode: MODES[mi],
            kind,
            validators: false,
            framing: false,
            details,
            req: r.clone(),
            py: fmt(&p),
            ts: fmt(&t),
        });
    });

    let extra = format!(" (+ {} persistence probes x 2 modes)", pcases.len());
    let outcomes = outcomes.into_inner().unwrap();
    report(
        "differential",
        false,
        &extra,
        n,
        &py.version,
        started,
        verbose,
        servers,
        outcomes,
    );
}

// ===========================================================================
// CGI: `python3 -m http.server --cgi` against `tinyserve --cgi`
// ===========================================================================
//
// A separate document root with scripts written by the test (sh and
// python3), under /tmp and world-readable, because both servers, run as
// root, run scripts as `nobody`. Python execs a script directly (it needs
// its shebang and x bit; `#!/usr/bin/python3` since interpreters under
// /root are out of nobody's reach); tinyserve runs `.py` with the first
// `python3` on PATH that nobody can execute, the same /usr/bin/python3 here.
//
// What is compared: for an answer that is not a script's output (404, 403,
// 501, static files) everything, as in the main test. For a script's output
// Python sends `200 Script output follows`, Server, Date and then the raw
// output, so its "headers" are the script's header block: the status
// line, the script's header lines (framing headers aside) and the body after
// the script's header block (de-chunked on tinyserve's side) are compared.
// Env listings are normalised first (own SERVER_PORT, SERVER_SOFTWARE, and
// the extra HTTP_* variables tinyserve adds, which are checked on their
// own). Deliberate differences: the CGI rows of DELIBERATE_DIFFERENCES.

/// The variables the env scripts print (besides every `HTTP_*`).
const CGI_ENV_PATTERN: &str = "AUTH_TYPE|CONTENT_LENGTH|CONTENT_TYPE|GATEWAY_INTERFACE|\
PATH_INFO|PATH_TRANSLATED|QUERY_STRING|REMOTE_ADDR|REMOTE_HOST|REMOTE_USER|REQUEST_METHOD|\
SCRIPT_NAME|SERVER_NAME|SERVER_PORT|SERVER_PROTOCOL|SERVER_SOFTWARE|HTTP_[A-Za-z0-9_]+";

/// Prints the CGI variables one per line, sorted, then its arguments.
fn env_sh() -> String {
    format!(
        "#!/bin/sh\n\
         printf 'Content-Type: text/plain\\n\\n'\n\
         env | LC_ALL=C sort | grep -E '^({CGI_ENV_PATTERN})='\n\
         printf 'argc=%s\\n' \"$#\"\n\
         for a in \"$@\"; do printf 'arg=[%s]\\n' \"$a\"; done\n\
         exit 0\n"
    )
}

/// The same in Python (bytes in, bytes out, sorted by name).
fn env_py() -> String {
    format!(
        "#!/usr/bin/python3\n\
         import os, re, sys\n\
         pat = re.compile(rb'^({CGI_ENV_PATTERN})$')\n\
         out = sys.stdout.buffer\n\
         out.write(b'Content-Type: text/plain\\n\\n')\n\
         for k in sorted(os.environb):\n\
         \x20   if pat.match(k):\n\
         \x20       out.write(k + b'=' + os.environb[k] + b'\\n')\n\
         out.write(b'argc=%d\\n' % (len(sys.argv) - 1))\n\
         for a in sys.argv[1:]:\n\
         \x20   out.write(b'arg=[' + os.fsencode(a) + b']\\n')\n"
    )
}

/// CPython's test_httpservers `cgi_file1`.
const FILE1_PY: &str = "#!/usr/bin/python3\n\
print(\"Content-type: text/html\")\n\
print()\n\
print(\"Hello World\")\n";

/// CPython's `cgi_file2`: reads a urlencoded POST body.
const FILE2_PY: &str = "#!/usr/bin/python3\n\
import os\n\
import sys\n\
import urllib.parse\n\
\n\
print(\"Content-type: text/html\")\n\
print()\n\
\n\
content_length = int(os.environ[\"CONTENT_LENGTH\"])\n\
query_string = sys.stdin.buffer.read(content_length)\n\
params = {key.decode(\"utf-8\"): val.decode(\"utf-8\")\n\
            for key, val in urllib.parse.parse_qsl(query_string)}\n\
\n\
print(\"%s, %s, %s\" % (params[\"spam\"], params[\"eggs\"], params[\"bacon\"]))\n";

/// CPython's `cgi_file4`, for QUERY_STRING.
const FILE4_PY: &str = "#!/usr/bin/python3\n\
import os\n\
\n\
print(\"Content-type: text/html\")\n\
print()\n\
\n\
print(os.environ[\"QUERY_STRING\"])\n";

/// CPython's `cgi_file6` header (an extra header line before Content-type),
/// with a fixed body instead of the whole environment.
const FILE6_PY: &str = "#!/usr/bin/python3\n\
print(\"X-ambv: was here\")\n\
print(\"Content-type: text/html\")\n\
print()\n\
print(\"<pre>\")\n\
print(\"</pre>\")\n";

/// Builds the CGI document root.
fn cgi_fixture() -> TempTree {
    assert!(
        std::path::Path::new("/usr/bin/python3").exists(),
        "the CGI differential needs /usr/bin/python3 (the scripts' shebang: Python's server \
         execs them as nobody, who cannot run an interpreter under /root)"
    );
    let t = TempTree::new("cgi-diff");
    t.file("a.txt", b"static a.txt in the CGI root\n");
    t.file("index.html", b"<p>cgi root index</p>\n");
    let env = env_sh();
    for p in ["cgi-bin/env.sh", "htbin/env.sh", "cgi-bin/sub/env.sh"] {
        t.script(p, &env);
    }
    t.script("cgi-bin/env.py", &env_py());
    t.script("cgi-bin/file1.py", FILE1_PY);
    t.script("cgi-bin/sub/file.py", FILE1_PY);
    t.script("cgi-bin/file2.py", FILE2_PY);
    t.script("cgi-bin/file4.py", FILE4_PY);
    t.script("cgi-bin/file6.py", FILE6_PY);
    t.write_mode("cgi-bin/nonexec.py", FILE1_PY.as_bytes(), 0o644);
    t.write_mode("cgi-bin/nonexec.sh", b"#!/bin/sh\necho hi\n", 0o644);
    t.dir("cgi-bin/emptydir");
    t.script(
        "cgi-bin/echo.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\n\
         head -c \"${CONTENT_LENGTH:-0}\"\n",
    );
    t.script(
        "cgi-bin/big.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nyes 0123456789abcdef | head -c 300000\n",
    );
    t.script(
        "cgi-bin/crlf.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-B: two words\\r\\n\\r\\nbody\\r\\n'\n",
    );
    t.script(
        "cgi-bin/length.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\nContent-Length: 6\\n\\nhello\\n'\n",
    );
    t.script(
        "cgi-bin/status.sh",
        "#!/bin/sh\nprintf 'Status: 404 Not Here\\nX-A: 1\\nContent-Type: text/plain\\n\\nnope\\n'\n",
    );
    t.script(
        "cgi-bin/status201.sh",
        "#!/bin/sh\nprintf 'Status: 201\\nContent-Type: text/plain\\n\\ncreated\\n'\n",
    );
    t.script(
        "cgi-bin/status204.sh",
        "#!/bin/sh\nprintf 'Status: 204 No Content\\n\\nignored body\\n'\n",
    );
    t.script(
        "cgi-bin/statusok.sh",
        "#!/bin/sh\nprintf 'Status: 200 OK\\nContent-Type: text/plain\\n\\nok\\n'\n",
    );
    t.script(
        "cgi-bin/location.sh",
        "#!/bin/sh\nprintf 'Location: http://example.com/x?y=1\\n\\nsee there\\n'\n",
    );
    t.script(
        "cgi-bin/location301.sh",
        "#!/bin/sh\nprintf 'Status: 301 Moved\\nLocation: http://example.com/\\n\\n'\n",
    );
    t.script(
        "cgi-bin/localredirect.sh",
        "#!/bin/sh\nprintf 'Location: /a.txt\\n\\n'\n",
    );
    t.script("cgi-bin/nohead.sh", "#!/bin/sh\necho hello world\n");
    t.script("cgi-bin/silent.sh", "#!/bin/sh\nexit 0\n");
    t
}

/// What Python is expected to answer (corpus sanity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PyCgi {
    /// `200 Script output follows` and the script's output.
    Script,
    /// An ordinary response with this code (error page, static file, 301).
    Status(u16),
}

struct CgiCase {
    name: String,
    req: Vec<u8>,
    py: PyCgi,
    quirk: Option<Quirk>,
}

impl CgiCase {
    fn quirk(mut self, q: Quirk) -> CgiCase {
        self.quirk = Some(q);
        self
    }

    /// The response body is an env listing (normalised before comparing).
    fn is_env(&self) -> bool {
        let t = request_target(&self.req);
        self.py == PyCgi::Script && (contains(&t, b"env.sh") || contains(&t, b"env.py"))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn cgi_case(name: impl Into<String>, req: impl AsRef<[u8]>, py: PyCgi) -> CgiCase {
    CgiCase {
        name: name.into(),
        req: req.as_ref().to_vec(),
        py,
        quirk: None,
    }
}

/// A case named after its request line, with headers.
fn cgi_line(l: &str, headers: &[&str], py: PyCgi) -> CgiCase {
    let name = if headers.is_empty() {
        l.to_string()
    } else {
        format!("{l} [{}]", headers.join(" | "))
    };
    cgi_case(name, req(l, headers), py)
}

/// A request with a body (Content-Length added).
fn req_body(l: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let cl = format!("Content-Length: {}", body.len());
    let mut hs: Vec<&str> = headers.to_vec();
    hs.push(&cl);
    let mut r = req(l, &hs);
    r.extend_from_slice(body);
    r
}

fn cgi_corpus() -> Vec<CgiCase> {
    use PyCgi::{Script, Status as St};
    let mut v: Vec<CgiCase> = Vec::new();
    let mut add = |c: CgiCase| v.push(c);

    // --- the environment, sh and python ----------------------------------
    add(cgi_line("GET /cgi-bin/env.sh HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.1",
        &["Host: example.org"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.py HTTP/1.1",
        &["Host: example.org"],
        Script,
    ));
    add(
        cgi_line("GET /cgi-bin/env.py/x%2520y/?a=1 HTTP/1.0", &[], Script)
            .quirk(Quirk::CgiPathInfoDecodedOnce),
    );
    add(cgi_line("GET /htbin/env.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/sub/env.sh HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/env.sh/extra/path HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh/extra/path?q=1 HTTP/1.1",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/env.sh/ HTTP/1.0", &[], Script));
    add(
        cgi_line("GET /cgi-bin/env.sh/a%2520b/ HTTP/1.0", &[], Script)
            .quirk(Quirk::CgiPathInfoDecodedOnce),
    );
    add(cgi_line(
        "GET /cgi-bin/env.sh/a/./b//c/../d HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh/%3Cx%3E&y HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/env.sh?a?b HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/env.sh?x+y%20z HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/env.sh?k=v&x HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/env.sh? HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/env.sh?a=1#frag HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET //cgi-bin/env.sh HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/../cgi-bin/env.sh HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line(
        "GET /htbin/../cgi-bin/env.sh HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/sub/../env.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/./env.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin%2fenv.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi%2Dbin/env.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET cgi-bin/env.sh HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.1",
        &["Connection: close"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &["Connection: keep-alive"],
        Script,
    ));
    // Authorization: AUTH_TYPE and REMOTE_USER as Python decodes them.
    for auth in [
        "Basic dXNlcjpwYXNz",     // user:pass
        "basic dXNlcjpwYXNz",     // scheme case
        "Basic dXNlcjpwYTpzcw==", // user:pa:ss: three fields, no user
        "Basic dXNlcjpwYXNzMQ==", // user:pass1
        "Basic dXNlcjpwYXNzMQ",   // the same without its padding
        "Basic w6k6eA==",         // non-ASCII user
        "Basic !!!",              // not base64 at all
        "Bearer abc.def",         // another scheme
        "Basic",                  // one word
        "Basic a b",              // three words
    ] {
        let h = format!("Authorization: {auth}");
        add(cgi_line("GET /cgi-bin/env.sh HTTP/1.0", &[&h], Script));
    }
    // Headers Python maps, and ones only tinyserve passes on.
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &["Accept: text/html", "ACCEPT: text/plain"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &["Accept:", "Accept: text/plain"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &["Cookie: a=1", "Cookie:", "cookie: b=2"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &[
            "Referer: http://r.example/",
            "User-Agent: ua/1.0",
            "User-Agent: ua/2.0",
        ],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.0",
        &["Referer:", "User-Agent:", "Content-Type: application/json"],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/env.sh HTTP/1.1",
        &[
            "Host: a.example",
            "X-Custom-Thing: 1",
            "x-custom-thing: 2",
            "Proxy: http://evil.example/",
            "Authorization: Basic dXNlcjpwYXNz",
            "If-None-Match: \"x\"",
        ],
        Script,
    ));
    add(cgi_case(
        "GET with a body to env.sh",
        req_body(
            "GET /cgi-bin/env.sh HTTP/1.0",
            &["Content-Type: text/plain"],
            b"hello",
        ),
        Script,
    ));
    add(cgi_case(
        "POST form to env.sh",
        req_body(
            "POST /cgi-bin/env.sh?q=1 HTTP/1.1",
            &["Content-Type: application/x-www-form-urlencoded"],
            b"a=1&b=2",
        ),
        Script,
    ));

    // --- CPython's CGIHTTPServerTestCase ---------------------------------
    add(cgi_line("GET /cgi-bin/file1.py HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/file1.py HTTP/1.1", &[], Script));
    add(cgi_line("GET /cgi-bin/invalid HTTP/1.0", &[], St(404)));
    add(cgi_line(
        "GET ///////////nocgi.py/../cgi-bin/nothere.sh HTTP/1.0",
        &[],
        St(404),
    ));
    add(cgi_line(
        "GET /cgi-bin/file1.py HTTP/1.0",
        &["Authorization: Basic dXNlcm5hbWU6cGFzcw=="],
        Script,
    ));
    add(cgi_line("GET cgi-bin/file1.py HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin%2ffile1.py HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/../cgi-bin/file1.py HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET //cgi-bin/file1.py HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/sub/file.py HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/file4.py?a=b?c=d HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line(
        "GET /cgi-bin/file4.py?k=aa%2F%2Fbb&//q//p//=//a//b// HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/file1.py?a?b HTTP/1.0", &[], Script));
    add(cgi_line(
        "GET /cgi-bin/file1.py/extra/path HTTP/1.0",
        &[],
        Script,
    ));
    add(cgi_line("GET /cgi-bin/file6.py HTTP/1.0", &[], Script));
    add(cgi_case(
        "POST urlencoded form to file2.py",
        req_body(
            "POST /cgi-bin/file2.py HTTP/1.0",
            &["Content-Type: application/x-www-form-urlencoded"],
            b"spam=1&eggs=python&bacon=123456",
        ),
        Script,
    ));
    add(cgi_case(
        "POST urlencoded form to file2.py, HTTP/1.1",
        req_body(
            "POST /cgi-bin/file2.py HTTP/1.1",
            &["Content-Type: application/x-www-form-urlencoded"],
            b"spam=1&eggs=python&bacon=123456",
        ),
        Script,
    ));
    add(cgi_line("GET /cgi-bin/ HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/emptydir HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/emptydir/ HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/sub HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/sub/ HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/nonexec.py HTTP/1.0", &[], St(403)));
    add(cgi_line("GET /cgi-bin/nonexec.sh HTTP/1.1", &[], St(403)));
    add(cgi_line(
        "GET /cgi-bin/missing/extra HTTP/1.0",
        &[],
        St(404),
    ));
    add(cgi_line("HEAD /cgi-bin/invalid HTTP/1.0", &[], St(404)));
    add(cgi_case(
        "POST to a static file",
        req_body("POST /a.txt HTTP/1.0", &[], b"x=1"),
        St(501),
    ));
    add(cgi_line("POST / HTTP/1.1", &[], St(501)));
    add(cgi_line("POST /nonexistent HTTP/1.0", &[], St(501)));
    add(cgi_line("PUT /cgi-bin/file1.py HTTP/1.0", &[], St(501)));
    add(cgi_line("DELETE /cgi-bin/env.sh HTTP/1.1", &[], St(501)));
    add(cgi_line("GET /cgi-bin HTTP/1.0", &[], St(301)));
    add(cgi_line("GET /htbin HTTP/1.1", &[], St(301)));
    add(cgi_line("GET /a.txt HTTP/1.0", &[], St(200)));
    add(cgi_line("GET / HTTP/1.1", &[], St(200)));
    add(cgi_line("GET /cgi-bin/../a.txt HTTP/1.0", &[], St(200)));
    add(cgi_line("GET /cgi-bin/%2e%2e/a.txt HTTP/1.0", &[], St(200)));
    add(cgi_line("GET /cgi-binx/env.sh HTTP/1.0", &[], St(404)));
    add(cgi_line("GET /a/cgi-bin/env.sh HTTP/1.0", &[], St(404)));

    // --- outputs and bodies ---------------------------------------------------
    add(cgi_line("GET /cgi-bin/crlf.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/crlf.sh HTTP/1.1", &[], Script));
    add(cgi_line("GET /cgi-bin/length.sh HTTP/1.1", &[], Script));
    add(cgi_line("GET /cgi-bin/big.sh HTTP/1.0", &[], Script));
    add(cgi_line("GET /cgi-bin/big.sh HTTP/1.1", &[], Script));
    {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        add(cgi_case(
            "POST 100 kB to echo.sh, HTTP/1.0",
            req_body("POST /cgi-bin/echo.sh HTTP/1.0", &[], &body),
            Script,
        ));
        add(cgi_case(
            "POST 100 kB to echo.sh, HTTP/1.1",
            req_body("POST /cgi-bin/echo.sh HTTP/1.1", &[], &body),
            Script,
        ));
    }
    add(cgi_case(
        "POST empty body to echo.sh",
        req_body("POST /cgi-bin/echo.sh HTTP/1.1", &[], b""),
        Script,
    ));
    add(cgi_case(
        "POST to echo.sh with Expect: 100-continue",
        req_body(
            "POST /cgi-bin/echo.sh HTTP/1.1",
            &["Expect: 100-continue"],
            b"after continue",
        ),
        Script,
    ));

    // --- deliberate differences -------------------------------------------------
    for l in [
        "GET /cgi-bin/status.sh HTTP/1.0",
        "GET /cgi-bin/status.sh HTTP/1.1",
        "GET /cgi-bin/status201.sh HTTP/1.1",
        "GET /cgi-bin/status204.sh HTTP/1.1",
        "GET /cgi-bin/statusok.sh HTTP/1.0",
        "GET /cgi-bin/location.sh HTTP/1.0",
        "GET /cgi-bin/location.sh HTTP/1.1",
        "GET /cgi-bin/location301.sh HTTP/1.1",
        "GET /cgi-bin/localredirect.sh HTTP/1.0",
        "GET /cgi-bin/localredirect.sh HTTP/1.1",
        "HEAD /cgi-bin/status.sh HTTP/1.0",
    ] {
        add(cgi_line(l, &[], Script).quirk(Quirk::CgiOutputHeader));
    }
    for l in [
        "HEAD /cgi-bin/file1.py HTTP/1.0",
        "HEAD /cgi-bin/file1.py HTTP/1.1",
        "HEAD /cgi-bin/env.sh HTTP/1.1",
        "HEAD /cgi-bin/big.sh HTTP/1.1",
    ] {
        add(cgi_line(l, &[], Script).quirk(Quirk::CgiHead));
    }
    for l in [
        "GET /cgi-bin/nohead.sh HTTP/1.0",
        "GET /cgi-bin/nohead.sh HTTP/1.1",
        "GET /cgi-bin/silent.sh HTTP/1.0",
        "GET /cgi-bin/silent.sh HTTP/1.1",
    ] {
        add(cgi_line(l, &[], Script).quirk(Quirk::CgiInvalidHeader));
    }
    v
}

/// One side's answer to a CGI request, reduced to what is compared.
#[derive(Debug, Default)]
struct CgiView {
    /// Status lines of interim (1xx) responses.
    interim: Vec<String>,
    /// The final response; for Python's script output its headers are
    /// Server, Date and the script's header lines.
    resp: Option<Response>,
    /// Python only: the answer is `200 Script output follows`.
    script_output: bool,
    /// Python only: the script's header lines (what came after Date up to
    /// the first blank line); `None` when there was no blank line at all.
    script_headers: Option<Vec<(String, String)>>,
}

/// Python's answer: interim responses, then either an ordinary response or
/// `200 Script output follows` + Server + Date + the raw script output.
fn parse_python_cgi(raw: &[u8], head: bool) -> Result<CgiView, String> {
    let mut view = CgiView::default();
    let mut rest = raw;
    loop {
        if rest.is_empty() {
            return Ok(view);
        }
        let first_line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| format!("no status line: {}", escape_bytes(rest, 100)))?;
        let status_line = String::from_utf8_lossy(&rest[..first_line_end]).into_owned();
        if status_line.ends_with(" 200 Script output follows") {
            // Status line, Server, Date: Python's own lines, CRLF-terminated.
            let mut pos = 0;
            let mut own = Vec::new();
            for _ in 0..3 {
                let e = rest[pos..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .ok_or("python's own header lines are incomplete")?;
                own.push(String::from_utf8_lossy(&rest[pos..pos + e]).into_owned());
                pos += e + 2;
            }
            if !own[1].starts_with("Server:") || !own[2].starts_with("Date:") {
                return Err(format!("unexpected python head {own:?}"));
            }
            let output = &rest[pos..];
            let mut resp = Response::body_only(Vec::new());
            resp.status_line = Some(status_line.clone());
            resp.version = status_line.split(' ').next().map(str::to_string);
            resp.status = Some(200);
            resp.reason = Some("Script output follows".into());
            // The script's header block ends at the first empty line.
            let mut headers = Vec::new();
            let mut p = 0;
            let mut complete = false;
            while let Some(nl) = output[p..].iter().position(|&b| b == b'\n') {
                let line = &output[p..p + nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                p += nl + 1;
                if line.is_empty() {
                    complete = true;
                    break;
                }
                let l = String::from_utf8_lossy(line);
                match l.split_once(':') {
                    Some((n, v)) => headers.push((n.to_string(), v.trim().to_string())),
                    None => headers.push((l.into_owned(), String::new())),
                }
            }
            if complete {
                resp.body = output[p..].to_vec();
                resp.headers = headers.clone();
                view.script_headers = Some(headers);
            } else {
                resp.body = output.to_vec();
            }
            view.script_output = true;
            view.resp = Some(resp);
            return Ok(view);
        }
        let (r, n) = Response::parse_head(rest)?;
        if r.status.is_some_and(|s| (100..200).contains(&s)) {
            view.interim.push(status_line);
            rest = &rest[n..];
            continue;
        }
        let mut all = Response::parse_stream(rest, head)?;
        view.resp = all.pop();
        return Ok(view);
    }
}

/// tinyserve's answer: interim responses and the final one (de-chunked).
fn parse_tinyserve_cgi(raw: &[u8], head: bool) -> Result<CgiView, String> {
    let mut all = Response::parse_stream(raw, head)?;
    let resp = all.pop();
    Ok(CgiView {
        interim: all.iter().filter_map(|r| r.status_line.clone()).collect(),
        resp,
        ..CgiView::default()
    })
}

/// Headers that frame the body: tinyserve's business, not the script's.
const FRAMING_HEADERS: [&str; 3] = ["Connection", "Transfer-Encoding", "Content-Length"];

/// tinyserve's headers for a script's output, without Server, Date and
/// the framing headers (and without `Content-Length` only when the script
/// itself did not send one).
fn ts_script_headers(t: &Response, script_sent_length: bool) -> Vec<(String, String)> {
    t.headers
        .iter()
        .filter(|(n, _)| {
            !ignored_header(n)
                && !FRAMING_HEADERS.iter().any(|f| {
                    n.eq_ignore_ascii_case(f) && !(script_sent_length && *f == "Content-Length")
                })
        })
        .cloned()
        .collect()
}

/// The request's header lines as (name, value).
fn request_headers(req: &[u8]) -> Vec<(String, String)> {
    let head_end = req
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(req.len());
    String::from_utf8_lossy(&req[..head_end])
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect()
}

/// Normalises an env listing for comparison: `SERVER_PORT` must be the
/// server's own port and `SERVER_SOFTWARE` non-empty (both replaced by
/// placeholders); on tinyserve's side the `HTTP_*` variables Python does
/// not set are taken out and checked against the request: one per request
/// header (RFC 3875 4.1.18), `HTTP_HOST` present when there is a Host
/// header, never `HTTP_PROXY` nor `HTTP_AUTHORIZATION`.
fn normalise_env(
    body: &[u8],
    port: u16,
    req: &[u8],
    tinyserve: bool,
    d: &mut Vec<String>,
) -> Vec<u8> {
    let who = if tinyserve { "tinyserve" } else { "python" };
    let mut out = Vec::new();
    let mut extras: Vec<(String, String)> = Vec::new();
    let mut saw_port = false;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let (name, value) = text
            .trim_end_matches('\n')
            .split_once('=')
            .unwrap_or(("", ""));
        if name == "SERVER_PORT" {
            saw_port = true;
            if value != port.to_string() {
                d.push(format!(
                    "env: {who} SERVER_PORT={value}, its port is {port}"
                ));
            }
            out.extend_from_slice(b"SERVER_PORT=<own port>\n");
        } else if name == "SERVER_SOFTWARE" {
            if value.is_empty() {
                d.push(format!("env: {who} SERVER_SOFTWARE is empty"));
            }
            out.extend_from_slice(b"SERVER_SOFTWARE=<software>\n");
        } else if tinyserve && name.starts_with("HTTP_") && !PYTHON_CGI_VARS.contains(&name) {
            extras.push((name.to_string(), value.to_string()));
        } else {
            out.extend_from_slice(line);
        }
    }
    if !saw_port {
        d.push(format!("env: {who} has no SERVER_PORT"));
    }
    if tinyserve {
        let headers = request_headers(req);
        let var = |n: &str| format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_"));
        for bad in ["HTTP_PROXY", "HTTP_AUTHORIZATION"] {
            if extras.iter().any(|(n, _)| n == bad) {
                d.push(format!("env: tinyserve sets {bad}"));
            }
        }
        let hosts: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Host"))
            .map(|(_, v)| v.as_str())
            .collect();
        let host = extras
            .iter()
            .find(|(n, _)| n == "HTTP_HOST")
            .map(|(_, v)| v.as_str());
        if !hosts.is_empty() && host != Some(hosts.join(", ").as_str()) {
            d.push(format!(
                "env: HTTP_HOST want {:?}, got {host:?}",
                hosts.join(", ")
            ));
        }
        for (n, _) in &extras {
            if !headers.iter().any(|(h, _)| var(h) == *n) {
                d.push(format!(
                    "env: tinyserve sets {n}, which no request header names"
                ));
            }
        }
        let skip = ["content-type", "content-length", "authorization", "proxy"];
        for (h, _) in &headers {
            let v = var(h);
            if skip.contains(&h.to_ascii_lowercase().as_str())
                || PYTHON_CGI_VARS.contains(&v.as_str())
            {
                continue;
            }
            if !extras.iter().any(|(n, _)| *n == v) {
                d.push(format!(
                    "env: request header {h} did not reach the script as {v}"
                ));
            }
        }
    }
    out
}

/// Checks how tinyserve framed a script's body (Quirk::CgiFraming).
fn check_cgi_framing(
    t: &Response,
    mode: &str,
    req: &[u8],
    script_length: Option<&str>,
    d: &mut Vec<String>,
) {
    let first_line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let client_11 = first_line.ends_with(b"HTTP/1.1\r") || first_line.ends_with(b"HTTP/1.1");
    let conn_close = request_headers(req).iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("Connection")
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
    });
    let status = t.status.unwrap_or(0);
    let bodiless =
        is_head_request(req) || (100..200).contains(&status) || status == 204 || status == 304;
    let te = t.header("Transfer-Encoding");
    let cl = t.header("Content-Length");
    if bodiless {
        if te.is_some() {
            d.push(format!("framing: no body, yet Transfer-Encoding {te:?}"));
        }
        if cl != script_length {
            d.push(format!(
                "framing: Content-Length {cl:?}, the script said {script_length:?}"
            ));
        }
        return;
    }
    if let Some(n) = script_length {
        if cl != Some(n) || te.is_some() {
            d.push(format!(
                "framing: the script sent Content-Length {n}; tinyserve sent Content-Length {cl:?}, Transfer-Encoding {te:?}"
            ));
        }
    } else if mode == "HTTP/1.1" && client_11 && !conn_close {
        if te != Some("chunked") || cl.is_some() {
            d.push(format!(
                "framing: want chunked for an HTTP/1.1 client, got Transfer-Encoding {te:?}, Content-Length {cl:?}"
            ));
        }
    } else {
        if te.is_some() || cl.is_some() {
            d.push(format!(
                "framing: want the body delimited by closing, got Transfer-Encoding {te:?}, Content-Length {cl:?}"
            ));
        }
        if mode == "HTTP/1.1"
            && !t
                .header("Connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            d.push(format!(
                "framing: a close-delimited body in HTTP/1.1 mode needs Connection: close, got {:?}",
                t.header("Connection")
            ));
        }
    }
}

/// The standard reason phrase for the codes the scripts use.
fn standard_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        _ => "?",
    }
}

struct CgiRun {
    raw_p: RawExchange,
    raw_t: RawExchange,
    p: Result<CgiView, String>,
    t: Result<CgiView, String>,
}

/// Compares one CGI exchange. Returns (kind, details, framing checked).
fn compare_cgi(
    c: &CgiCase,
    mode: &str,
    run: &CgiRun,
    ports: (u16, u16),
    root: &TempTree,
    selftest: bool,
) -> (OutcomeKind, Vec<String>, bool) {
    let mut d = Vec::new();
    let (p, t) = match (&run.p, &run.t) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(e), _) => {
            return (
                OutcomeKind::CorpusError,
                vec![format!("python unparsable: {e}")],
                false,
            );
        }
        (_, Err(e)) => {
            return (
                OutcomeKind::Mismatch,
                vec![format!("tinyserve unparsable: {e}")],
                false,
            );
        }
    };
    let Some(pr) = &p.resp else {
        return (
            OutcomeKind::CorpusError,
            vec!["python sent no response".into()],
            false,
        );
    };
    // Corpus sanity.
    let py_got = if p.script_output {
        PyCgi::Script
    } else {
        PyCgi::Status(pr.status.unwrap_or(0))
    };
    if py_got != c.py {
        return (
            OutcomeKind::CorpusError,
            vec![format!(
                "python answered {py_got:?}, corpus expects {:?}",
                c.py
            )],
            false,
        );
    }
    let Some(tr) = &t.resp else {
        return (
            OutcomeKind::Mismatch,
            vec!["tinyserve sent no response".into()],
            false,
        );
    };
    if let Err(e) = &run.raw_t.end {
        d.push(format!("tinyserve did not close cleanly: {e}"));
    }
    if p.interim != t.interim {
        d.push(format!(
            "interim responses: python {:?} vs tinyserve {:?}",
            p.interim, t.interim
        ));
    }
    let head = is_head_request(&c.req);

    // Not a script's output: compare everything, as the main test does.
    if !p.script_output {
        let mk = |raw: &RawExchange, v: &CgiView| Side {
            raw: raw.clone(),
            parsed: Ok(v.resp.iter().cloned().collect()),
        };
        d.extend(diff_exchange(&mk(&run.raw_p, p), &mk(&run.raw_t, t), &[]));
        return (
            if d.is_empty() {
                OutcomeKind::Matched
            } else {
                OutcomeKind::Mismatch
            },
            d,
            false,
        );
    }

    let quirk = c.quirk.filter(|_| !selftest);
    let script_headers = p.script_headers.clone();
    let script_length = script_headers.as_ref().and_then(|h| {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.clone())
    });
    let ts_headers = ts_script_headers(tr, script_length.is_some());
    let mut py_body = pr.body.clone();
    let mut ts_body = tr.body.clone();
    if c.is_env() {
        py_body = normalise_env(&py_body, ports.0, &c.req, false, &mut d);
        if !ts_body.is_empty() {
            ts_body = normalise_env(&ts_body, ports.1, &c.req, true, &mut d);
        }
    }
    let body_diff = |want: &[u8], got: &[u8], d: &mut Vec<String>| {
        if want != got {
            let i = first_diff(want, got);
            let from = i.saturating_sub(20);
            d.push(format!(
                "body: want {} bytes, tinyserve {} bytes, first difference at byte {i}: want ...{}... got ...{}...",
                want.len(),
                got.len(),
                escape_bytes(want.get(from..).unwrap_or_default(), 80),
                escape_bytes(got.get(from..).unwrap_or_default(), 80),
            ));
        }
    };
    if quirk == Some(Quirk::CgiPathInfoDecodedOnce) {
        // Decoded once more, tinyserve's PATH_INFO and PATH_TRANSLATED must
        // be Python's; everything else must match as it is.
        let mut fixed = Vec::new();
        for line in ts_body.split_inclusive(|&b| b == b'\n') {
            match line.iter().position(|&b| b == b'=') {
                Some(eq) if &line[..eq] == b"PATH_INFO" || &line[..eq] == b"PATH_TRANSLATED" => {
                    fixed.extend_from_slice(&line[..=eq]);
                    fixed.extend_from_slice(&percent_decode(&line[eq + 1..]));
                }
                _ => fixed.extend_from_slice(line),
            }
        }
        if fixed == ts_body {
            d.push("corpus: PATH_INFO has nothing left to decode".into());
        }
        ts_body = fixed;
    }
    let framing_checked = match quirk {
        None | Some(Quirk::CgiHead) | Some(Quirk::CgiPathInfoDecodedOnce) => {
            let Some(sh) = &script_headers else {
                return (
                    OutcomeKind::CorpusError,
                    vec!["corpus: the script printed no header block".into()],
                    false,
                );
            };
            if quirk == Some(Quirk::CgiHead) && (!head || pr.body.is_empty()) {
                return (
                    OutcomeKind::CorpusError,
                    vec!["corpus: CgiHead needs a HEAD request to a script with a body".into()],
                    false,
                );
            }
            if pr.status_line != tr.status_line {
                d.push(format!(
                    "status line: python {:?} vs tinyserve {:?}",
                    pr.status_line, tr.status_line
                ));
            }
            if *sh != ts_headers {
                d.push(format!(
                    "script headers: python {sh:?} vs tinyserve {ts_headers:?}"
                ));
            }
            let want: &[u8] = if head { b"" } else { &py_body };
            body_diff(want, &ts_body, &mut d);
            check_cgi_framing(tr, mode, &c.req, script_length.as_deref(), &mut d);
            !head
        }
        Some(Quirk::CgiOutputHeader) => {
            let Some(sh) = &script_headers else {
                return (
                    OutcomeKind::CorpusError,
                    vec!["corpus: no header block".into()],
                    false,
                );
            };
            let get = |n: &str| {
                sh.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.as_str())
            };
            let version = mode;
            let (code, reason, passed): (u16, String, Vec<(String, String)>) =
                match (get("Status"), get("Location")) {
                    (Some(st), _) => {
                        let code: u16 = st[..3].parse().expect("corpus Status");
                        let r = st[3..].trim();
                        let r = if r.is_empty() {
                            standard_phrase(code).to_string()
                        } else {
                            r.to_string()
                        };
                        let passed = sh
                            .iter()
                            .filter(|(n, _)| !n.eq_ignore_ascii_case("Status"))
                            .cloned()
                            .collect();
                        (code, r, passed)
                    }
                    (None, Some(loc)) if loc.starts_with('/') => {
                        // Local redirect: the path is served in place.
                        let file = root.path(loc.trim_start_matches('/'));
                        let want = std::fs::read(&file).expect("local redirect target");
                        let st = format!("{version} 200 OK");
                        if tr.status_line.as_deref() != Some(st.as_str()) {
                            d.push(format!(
                                "local redirect to {loc}: want {st:?}, got {:?}",
                                tr.status_line
                            ));
                        }
                        if tr.header("Location").is_some() {
                            d.push(format!(
                                "local redirect to {loc}: the Location header went to the client"
                            ));
                        }
                        let want: &[u8] = if head { b"" } else { &want };
                        body_diff(want, &tr.body, &mut d);
                        if tr.content_length()
                            != Some(std::fs::metadata(&file).unwrap().len() as usize)
                        {
                            d.push(format!(
                                "local redirect to {loc}: Content-Length {:?}",
                                tr.header("Content-Length")
                            ));
                        }
                        let kind = if d.is_empty() {
                            OutcomeKind::Deliberate(Quirk::CgiOutputHeader)
                        } else {
                            OutcomeKind::Mismatch
                        };
                        return (kind, d, false);
                    }
                    (None, Some(_)) => (302, "Found".to_string(), sh.clone()),
                    (None, None) => {
                        return (
                            OutcomeKind::CorpusError,
                            vec!["corpus: no Status/Location".into()],
                            false,
                        );
                    }
                };
            let want_line = format!("{version} {code} {reason}");
            if tr.status_line.as_deref() != Some(want_line.as_str()) {
                d.push(format!(
                    "status line: want {want_line:?}, got {:?}",
                    tr.status_line
                ));
            }
            if passed != ts_headers {
                d.push(format!(
                    "script headers: want {passed:?}, got {ts_headers:?}"
                ));
            }
            let bodiless = head || (100..200).contains(&code) || code == 204 || code == 304;
            let want: &[u8] = if bodiless { b"" } else { &py_body };
            body_diff(want, &ts_body, &mut d);
            check_cgi_framing(tr, mode, &c.req, script_length.as_deref(), &mut d);
            !bodiless
        }
        Some(Quirk::CgiInvalidHeader) => {
            if script_headers.is_some() && !pr.body.is_empty() {
                return (
                    OutcomeKind::CorpusError,
                    vec!["corpus: the script did print a header block".into()],
                    false,
                );
            }
            match parse_error_body(&tr.body) {
                Some((502, msg)) => {
                    check_status_line(tr, mode, 502, &msg, &mut d);
                    check_error_headers(tr, tr.body.len(), &mut d);
                }
                _ => d.push(format!(
                    "want a 502 error page, got {:?} with body {}",
                    tr.status_line,
                    escape_bytes(&tr.body, 100)
                )),
            }
            false
        }
        Some(q) => {
            return (
                OutcomeKind::CorpusError,
                vec![format!("{q:?} is not a CGI quirk")],
                false,
            );
        }
    };
    let kind = match (d.is_empty(), quirk) {
        (false, _) => OutcomeKind::Mismatch,
        (true, Some(q)) => OutcomeKind::Deliberate(q),
        (true, None) => OutcomeKind::Matched,
    };
    (kind, d, framing_checked)
}

/// Deadline for one CGI exchange (a python script starts in ~50 ms).
const CGI_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(8);

#[test]
fn differential_cgi_against_python() {
    let started = Instant::now();
    let py = python();
    let selftest = std::env::var_os("TINYSERVE_DIFF_SELFTEST").is_some();
    let only = std::env::var("TINYSERVE_DIFF_ONLY").ok();
    let verbose = std::env::var_os("TINYSERVE_DIFF_VERBOSE").is_some();
    let root = cgi_fixture();
    let servers: Vec<(Server, Server)> = MODES
        .iter()
        .map(|m| {
            let p = Server::python_cgi(&root.root, m);
            let t = if selftest {
                Server::python_cgi(&root.root, m)
            } else {
                Server::tinyserve_with(&root.root, m, &["--cgi"])
            };
            (p, t)
        })
        .collect();
    for (p, t) in &servers {
        eprintln!(
            "differential cgi: {} on {} | {} on {}",
            p.label, p.port, t.label, t.port
        );
    }

    let mut cases = cgi_corpus();
    if let Some(o) = &only {
        cases.retain(|c| c.name.contains(o.as_str()));
    }
    {
        let mut seen = std::collections::HashSet::new();
        for c in &cases {
            assert!(
                seen.insert(c.name.clone()),
                "duplicate case name {:?}",
                c.name
            );
        }
    }
    let n = cases.len();
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    par_for(n * MODES.len(), |job| {
        let (ci, mi) = (job / MODES.len(), job % MODES.len());
        let c = &cases[ci];
        let mode = MODES[mi];
        let (ps, ts) = &servers[mi];
        let head = is_head_request(&c.req);
        let raw_p = raw_request_opts(ps.addr(), &c.req, true, CGI_EXCHANGE_TIMEOUT);
        // No half-close towards tinyserve: its EOF means the client has
        // left, and a script whose client left is stopped (see the README).
        let raw_t = if selftest {
            raw_request_opts(ts.addr(), &c.req, true, CGI_EXCHANGE_TIMEOUT)
        } else {
            raw_request_answered(ts.addr(), &c.req, CGI_EXCHANGE_TIMEOUT)
        };
        let run = CgiRun {
            p: parse_python_cgi(&raw_p.bytes, head),
            t: if selftest {
                parse_python_cgi(&raw_t.bytes, head)
            } else {
                parse_tinyserve_cgi(&raw_t.bytes, head)
            },
            raw_p,
            raw_t,
        };
        let (kind, details, framing) = if selftest {
            // Python on both sides: the outputs must be equal byte for byte,
            // but for the Date header and the env's own port.
            let strip = |raw: &[u8], port: u16| {
                let s = String::from_utf8_lossy(raw).into_owned();
                s.lines()
                    .filter(|l| !l.starts_with("Date:"))
                    .map(|l| {
                        if l.starts_with("SERVER_PORT=") {
                            "SERVER_PORT=*".to_string()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .replace(&port.to_string(), "<port>")
            };
            let a = strip(&run.raw_p.bytes, ps.port);
            let b = strip(&run.raw_t.bytes, ts.port);
            if a == b {
                (OutcomeKind::Matched, vec![], false)
            } else {
                (
                    OutcomeKind::Mismatch,
                    vec![format!("selftest: outputs differ:\n{a}\n---\n{b}")],
                    false,
                )
            }
        } else {
            compare_cgi(c, mode, &run, (ps.port, ts.port), &root, selftest)
        };
        let validators = !selftest
            && matches!((&run.p, &run.t), (Ok(p), Ok(t)) if !p.script_output
                && p.resp.as_ref().zip(t.resp.as_ref()).is_some_and(|(a, b)| !added_validators(a, b).0.is_empty()));
        outcomes.lock().unwrap().push(Outcome {
            name: c.name.clone(),
            mode,
            kind,
            validators,
            framing,
            details,
            req: c.req.clone(),
            py: escape_bytes(&run.raw_p.bytes, 600),
            ts: escape_bytes(&run.raw_t.bytes, 600),
        });
    });

    let outcomes = outcomes.into_inner().unwrap();
    report(
        "differential cgi",
        true,
        "",
        n,
        &py.version,
        started,
        verbose,
        servers,
        outcomes,
    );
}

/// Ends a differential run: reports a server that died first and loudly
/// (every later exchange then fails with "connection refused"), prints the
/// deliberate differences and mismatches and the summary line, and fails on
/// a crash or any mismatch.
#[allow(clippy::too_many_arguments)]
fn report(
    title: &str,
    cgi: bool,
    extra: &str,
    n: usize,
    py_version: &str,
    started: Instant,
    verbose: bool,
    mut servers: Vec<(Server, Server)>,
    mut outcomes: Vec<Outcome>,
) {
    outcomes.sort_by(|a, b| (a.name.as_str(), a.mode).cmp(&(b.name.as_str(), b.mode)));
    let mut crashes = Vec::new();
    for (mi, (p, t)) in servers.iter_mut().enumerate() {
        for s in [p, t] {
            if let Some(st) = s.try_exit_status() {
                let log = s.log_lines();
                crashes.push(format!(
                    "{} ({}) EXITED during the run with {st}; last stderr lines:\n      {}",
                    s.label,
                    MODES[mi],
                    log[log.len().saturating_sub(15)..].join("\n      ")
                ));
            }
        }
    }
    for c in &crashes {
        eprintln!("\n!!! {c}");
    }
    if verbose {
        for o in &outcomes {
            eprintln!("[{:?}] {} ({})", o.kind, o.name, o.mode);
        }
        for (p, t) in &servers {
            for s in [p, t] {
                let sample: Vec<String> = s.log_lines().into_iter().take(2).collect();
                eprintln!("{} log sample: {sample:?}", s.label);
            }
        }
    }
    let count = |kind: fn(&OutcomeKind) -> bool| outcomes.iter().filter(|o| kind(&o.kind)).count();
    let matched = count(|k| *k == OutcomeKind::Matched);
    let deliberate = count(|k| matches!(k, OutcomeKind::Deliberate(_)));
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, OutcomeKind::Mismatch | OutcomeKind::CorpusError))
        .collect();
    print_deliberate(&outcomes, cgi);
    print_mismatches(&bad);
    eprintln!(
        "\n{title}: {n} requests x 2 modes, {matched} matched, {deliberate} deliberate differences{extra}; \
         {} mismatches; {:.1} s",
        bad.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{title}: {n} requests x 2 modes, {matched} matched, {deliberate} deliberate differences"
    );
    assert!(crashes.is_empty(), "server crashed: {}", crashes.join("\n"));
    assert!(
        bad.is_empty(),
        "{} {title} mismatches against {py_version} (see the report above): {}",
        bad.len(),
        bad.iter()
            .map(|o| format!("{} [{}]", o.name, o.mode))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
