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

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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
];

impl Quirk {
    /// Whether the quirk shows in this mode.
    fn applies(self, mode: &str) -> bool {
        match self {
            Quirk::KeepAliveHeader => mode == "HTTP/1.1",
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
fn corpus() -> Vec<Case> {
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
        v.push(line(&format!("GET /{name} HTTP/1.1"), Status(200)));
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
    v.push(line("GET /list/bad%FF.txt HTTP/1.1", Status(404)));
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
    v.push(line("GET http://127.0.0.1/a.txt HTTP/1.1", Status(404)));

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
    v.push(ims(
        "two headers, first future",
        "/a.txt",
        &[
            "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
        ],
        304,
    ));
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
    v.push(case(
        "Connection: keep-alive, Upgrade",
        req("GET /a.txt HTTP/1.0", &["Connection: keep-alive, Upgrade"]),
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
    v.push(case(
        "header without colon",
        req("GET /a.txt HTTP/1.1", &["NoColonHere"]),
        Status(200),
    ));
    v.push(case(
        "obs-fold header",
        req("GET /a.txt HTTP/1.1", &["X-Folded: a", " b"]),
        Status(200),
    ));
    v.push(case(
        "header name with space",
        req("GET /a.txt HTTP/1.1", &["X Bad: v"]),
        Status(200),
    ));
    v.push(case(
        "duplicate Host",
        req("GET /a.txt HTTP/1.1", &["Host: a", "Host: b"]),
        Status(200),
    ));

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
        .quirk(Quirk::RawNonAsciiPath),
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

fn filtered_headers(r: &Response, ignore_connection: bool) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| {
            !(ignored_header(n) || (ignore_connection && n.eq_ignore_ascii_case("Connection")))
        })
        .cloned()
        .collect()
}

fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Differences between two single responses (empty if equal).
fn diff_response(p: &Response, t: &Response, ignore_connection: bool) -> Vec<String> {
    let mut d = Vec::new();
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
    let ph = filtered_headers(p, ignore_connection);
    let th = filtered_headers(t, ignore_connection);
    if ph != th {
        let mut names: Vec<String> = Vec::new();
        for (n, _) in ph.iter().chain(th.iter()) {
            if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                names.push(n.clone());
            }
        }
        let mut value_diff = false;
        for n in &names {
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
fn diff_exchange(p: &Side, t: &Side, ignore_connection: bool) -> Vec<String> {
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
                for x in diff_response(a, b, ignore_connection) {
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
            d.extend(diff_exchange(p, t, true));
            if let (Some(a), Some(b)) = (pr.last(), tr.last()) {
                let want = a.header("Connection").unwrap_or("keep-alive");
                match b.header("Connection") {
                    Some(v) if v.eq_ignore_ascii_case(want) => {}
                    other => d.push(format!("Connection: want {want:?}, got {other:?}")),
                }
            }
        }
        Quirk::RawNonAsciiPath => {
            if pr.last().and_then(|r| r.status) != Some(404) {
                return vec![format!(
                    "corpus: python did not answer 404 ({})",
                    p.summary()
                )];
            }
            let path = request_target(req);
            let rel = path.strip_prefix(b"/").unwrap_or(&path);
            let want = fx.read_bytes_path(rel).expect("fixture file for raw path");
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
    }
    d
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

/// Requests sent WITHOUT half-closing: after the (final) response, is the
/// connection closed by the server (within 300 ms) or kept open?
fn persistence_corpus() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
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

    let mut cases = corpus();
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
                    let d = diff_exchange(&p, &t, false);
                    if d.is_empty() {
                        (OutcomeKind::Matched, d)
                    } else {
                        (OutcomeKind::Mismatch, d)
                    }
                }
            }
        };
        outcomes.lock().unwrap().push(Outcome {
            name: c.name.clone(),
            mode,
            kind,
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
        let (name, r) = &pcases[ci];
        let (ps, ts) = &servers[mi];
        let p = persistence_probe(ps.addr(), r);
        let t = persistence_probe(ts.addr(), r);
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
            (Ok(a), Ok(b)) if a == b => (OutcomeKind::Matched, vec![]),
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
            details,
            req: r.clone(),
            py: fmt(&p),
            ts: fmt(&t),
        });
    });

    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| (a.name.as_str(), a.mode).cmp(&(b.name.as_str(), b.mode)));

    // A server that died during the run makes every later exchange fail with
    // "connection refused": report the death itself first and loudly.
    let mut servers = servers;
    let mut crashes = Vec::new();
    for (mi, (p, t)) in servers.iter_mut().enumerate() {
        for s in [p, t] {
            if let Some(st) = s.try_exit_status() {
                let log = s.log_lines();
                let tail = &log[log.len().saturating_sub(15)..];
                crashes.push(format!(
                    "{} ({}) EXITED during the run with {st}; last stderr lines:\n      {}",
                    s.label,
                    MODES[mi],
                    tail.join("\n      ")
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
    }

    let matched = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Matched)
        .count();
    let deliberate = outcomes
        .iter()
        .filter(|o| matches!(o.kind, OutcomeKind::Deliberate(_)))
        .count();
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, OutcomeKind::Mismatch | OutcomeKind::CorpusError))
        .collect();

    eprintln!("\n=== deliberate differences (Python quirks tinyserve does not copy) ===");
    for (i, (q, py, ts)) in DELIBERATE_DIFFERENCES.iter().enumerate() {
        let hits: Vec<String> = outcomes
            .iter()
            .filter(|o| o.kind == OutcomeKind::Deliberate(*q))
            .map(|o| format!("{} ({})", o.name, o.mode))
            .collect();
        eprintln!(
            "{}. {:?}\n   python:    {py}\n   tinyserve: {ts}\n   seen in {} exchanges",
            i + 1,
            q,
            hits.len()
        );
    }

    if !bad.is_empty() {
        // Group by kind of difference ("reason phrase", "header Content-type",
        // "connection end", ...) so that one root cause is easy to spot.
        let mut cats: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for o in &bad {
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
        for o in &bad {
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

    // Don't let the log threads' buffers grow silently: show a couple of lines.
    if verbose {
        for (p, t) in &servers {
            eprintln!(
                "{} log sample: {:?}",
                p.label,
                p.log_lines().iter().take(2).collect::<Vec<_>>()
            );
            eprintln!(
                "{} log sample: {:?}",
                t.label,
                t.log_lines().iter().take(2).collect::<Vec<_>>()
            );
        }
    }

    eprintln!(
        "\ndifferential: {n} requests x 2 modes, {matched} matched, {deliberate} deliberate differences \
         (+ {} persistence probes x 2 modes); {} mismatches; {:.1} s",
        pcases.len(),
        bad.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "differential: {n} requests x 2 modes, {matched} matched, {deliberate} deliberate differences"
    );

    assert!(crashes.is_empty(), "server crashed: {}", crashes.join("\n"));
    assert!(
        bad.is_empty(),
        "{} differential mismatches against {} (see the report above): {}",
        bad.len(),
        py.version,
        bad.iter()
            .map(|o| format!("{} [{}]", o.name, o.mode))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
