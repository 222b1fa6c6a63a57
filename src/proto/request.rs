//! Request heads, parsed the way Python's `BaseHTTPRequestHandler` reads them.
//!
//! Python reads the request line with `readline(65537)` and judges it before
//! it reads any header, then reads at most 100 header lines of at most 65536
//! bytes each. We keep that order and those limits so that a client sees the
//! same status Python would give, but we work on a byte buffer that fills up
//! as data arrives: [`HeadScan`] remembers how far it has looked, so a head
//! that trickles in one byte at a time is still scanned only once.
//! Header lines themselves are parsed by `httparse`.

use crate::proto::escape::py_repr_latin1;

/// Longest request line and header line, counting the `\n`, as in Python.
pub const MAX_LINE: usize = 65536;
/// Python counts the blank line that ends the head among its 100 lines.
pub const MAX_HEADER_LINES: usize = 100;
/// Our own cap on a whole head: a longest request line plus a longest header
/// line fit, anything bigger gets 431 (Python has no overall cap).
pub const MAX_HEAD: usize = 2 * MAX_LINE + 4096;

/// A request line Python would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a [u8],
    /// The target the server routes on: a leading run of slashes reduced to
    /// one (gh-87389), an absolute-form target reduced to its path.
    pub target: &'a [u8],
    /// The target as Python's `self.path` has it: slashes reduced, an
    /// absolute-form target whole.
    pub raw_target: &'a [u8],
    /// The version word as it came (`HTTP/1.1`), empty for HTTP/0.9.
    pub version_word: &'a [u8],
    pub version: Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// A two-word request line: the answer has no status line or headers.
    Http09,
    Http {
        major: u64,
        minor: u64,
    },
}

impl Version {
    pub const HTTP_10: Version = Version::Http { major: 1, minor: 0 };
    pub const HTTP_11: Version = Version::Http { major: 1, minor: 1 };
}

/// Why a head was refused, with the status and message Python would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: Option<String>,
    pub explain: Option<String>,
    /// Python has not parsed a version yet when it refuses a request line,
    /// so it sends its error page without a status line. We send one anyway
    /// (a deliberate difference), but remember it for the log and tests.
    pub before_version: bool,
}

impl Rejection {
    fn new(status: u16, message: Option<String>) -> Rejection {
        Rejection {
            status,
            message,
            explain: None,
            before_version: false,
        }
    }
}

/// Python's `str.split()` separators for a line decoded as Latin-1, as a
/// table: the request line is split on every request.
const PY_SPACE: [bool; 256] = {
    let mut table = [false; 256];
    let spaces = [
        b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0,
    ];
    let mut i = 0;
    while i < spaces.len() {
        table[spaces[i] as usize] = true;
        i += 1;
    }
    table
};

/// The words of a line as Python's `str.split()` finds them.
fn py_words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < line.len() && PY_SPACE[usize::from(line[i])] {
            i += 1;
        }
        let start = i;
        while i < line.len() && !PY_SPACE[usize::from(line[i])] {
            i += 1;
        }
        (i > start).then(|| &line[start..i])
    })
}

/// The request line without its line ending, as Python logs it.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Parses a complete request line (line ending included or not).
/// `Ok(None)` is a blank line, which Python answers by closing.
pub fn parse_request_line(line: &[u8]) -> Result<Option<RequestLine<'_>>, Rejection> {
    let line = trim_line_end(line);
    let mut words = py_words(line);
    let mut first = [&b""[..]; 3];
    let mut count = 0;
    let mut last: &[u8] = b"";
    for w in words.by_ref() {
        if count < 3 {
            first[count] = w;
        }
        last = w;
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    let mut version = Version::Http09;
    if count >= 3 {
        version = parse_version(last).map_err(|()| Rejection {
            before_version: true,
            ..Rejection::new(
                400,
                Some(format!("Bad request version ({})", py_repr_latin1(last))),
            )
        })?;
        if let Version::Http { major, .. } = version
            && major >= 2
        {
            let number = &last[5..];
            return Err(Rejection {
                before_version: true,
                ..Rejection::new(
                    505,
                    Some(format!(
                        "Invalid HTTP version ({})",
                        String::from_utf8_lossy(number)
                    )),
                )
            });
        }
    }
    if !(2..=3).contains(&count) {
        return Err(Rejection::new(
            400,
            Some(format!("Bad request syntax ({})", py_repr_latin1(line))),
        ));
    }
    let (method, target) = (first[0], first[1]);
    if count == 2 && method != b"GET" {
        return Err(Rejection {
            before_version: true,
            ..Rejection::new(
                400,
                Some(format!(
                    "Bad HTTP/0.9 request type ({})",
                    py_repr_latin1(method)
                )),
            )
        });
    }
    let slashes = target.iter().take_while(|&&b| b == b'/').count();
    let raw_target = if slashes > 1 {
        &target[slashes - 1..]
    } else {
        target
    };
    // The path of an absolute-form target too: `http://h//evil.com` must
    // not make a `Location: //evil.com/` (a redirect to another host).
    let target = origin_form(raw_target);
    let slashes = target.iter().take_while(|&&b| b == b'/').count();
    let target = if slashes > 1 {
        &target[slashes - 1..]
    } else {
        target
    };
    Ok(Some(RequestLine {
        method,
        target,
        raw_target,
        version_word: if count == 3 { last } else { b"" },
        version,
    }))
}

/// The path and query of an absolute-form target (`http://host/x?y` is
/// `/x?y`), which a server MUST accept (RFC 9112 3.2.2); any other target as
/// it is. Python looks for a file named `http:/host/x` instead.
fn origin_form(target: &[u8]) -> &[u8] {
    let after_scheme = [&b"http://"[..], b"https://"].iter().find_map(|scheme| {
        let n = scheme.len();
        (target.len() >= n && target[..n].eq_ignore_ascii_case(scheme)).then(|| &target[n..])
    });
    let Some(rest) = after_scheme else {
        return target;
    };
    match rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')) {
        Some(i) if rest[i] == b'/' => &rest[i..],
        // `http://host` or `http://host?q`: the path is empty, which means `/`.
        _ => b"/",
    }
}

/// `HTTP/<digits>.<digits>`, each number at most 10 digits, as Python checks.
fn parse_version(word: &[u8]) -> Result<Version, ()> {
    // Python compares the version *string* with "HTTP/0.9" to decide
    // whether to leave out the status line, so only this spelling counts.
    if word == b"HTTP/0.9" {
        return Ok(Version::Http09);
    }
    let number = word.strip_prefix(b"HTTP/").ok_or(())?;
    let dot = memchr::memchr(b'.', number).ok_or(())?;
    let (major, minor) = (&number[..dot], &number[dot + 1..]);
    let parse = |digits: &[u8]| -> Result<u64, ()> {
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        Ok(digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
    };
    Ok(Version::Http {
        major: parse(major)?,
        minor: parse(minor)?,
    })
}

/// How far the search for the end of a head has got; kept between reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeadScan {
    /// Bytes already searched for a line end.
    searched: usize,
    /// Start of the line being searched.
    line_start: usize,
    /// End of the request line (after its `\n`), once found.
    request_line_end: Option<usize>,
    /// Header lines seen so far, the blank one included.
    header_lines: usize,
    /// `RequestLine` has been returned.
    line_reported: bool,
    /// A refusal held back while `RequestLine` is returned first.
    pending: Option<Rejection>,
}

/// What [`HeadScan::advance`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Need more bytes.
    Partial,
    /// The request line is complete and ends at this offset; the head is
    /// not (yet). Callers judge the request line now, as Python does.
    RequestLine(usize),
    /// The whole head is in the buffer: request line end, head end.
    Complete { line_end: usize, head_end: usize },
    /// The buffer holds something Python would refuse.
    Reject(Rejection),
}

impl HeadScan {
    /// Continues scanning `buf`, which starts at the start of the request and
    /// has only grown since the last call.
    ///
    /// When the request line is complete but the head is not (more bytes
    /// are needed, or the head is refused), `RequestLine` comes first, once,
    /// so the caller can judge the line before the headers, as Python does.
    /// When the whole head is already there, `Complete` comes at once and the
    /// line is judged with it: one parse per request on the fast path.
    pub fn advance(&mut self, buf: &[u8]) -> Scan {
        let outcome = self.scan(buf);
        if let (Scan::Partial | Scan::Reject(_), Some(end), false) =
            (&outcome, self.request_line_end, self.line_reported)
        {
            self.line_reported = true;
            if let Scan::Reject(rejection) = outcome {
                self.pending = Some(rejection);
            }
            return Scan::RequestLine(end);
        }
        outcome
    }

    fn scan(&mut self, buf: &[u8]) -> Scan {
        if let Some(rejection) = self.pending.take() {
            return Scan::Reject(rejection);
        }
        // Never look past the cap: the verdict must not depend on how the
        // bytes happened to arrive (one read may bring more than the cap).
        let buf = &buf[..buf.len().min(MAX_HEAD)];
        loop {
            let limit = (self.line_start + MAX_LINE + 1).min(buf.len());
            let found = if self.searched < limit {
                memchr::memchr(b'\n', &buf[self.searched..limit]).map(|i| self.searched + i)
            } else {
                None
            };
            let Some(nl) = found else {
                self.searched = limit;
                if limit - self.line_start > MAX_LINE {
                    return Scan::Reject(self.line_too_long());
                }
                if buf.len() >= MAX_HEAD {
                    return Scan::Reject(Rejection {
                        explain: Some("Request head is larger than the server accepts".into()),
                        ..Rejection::new(431, Some("Request header block too large".into()))
                    });
                }
                return Scan::Partial;
            };
            let end = nl + 1;
            if end - self.line_start > MAX_LINE {
                return Scan::Reject(self.line_too_long());
            }
            let line = &buf[self.line_start..end];
            self.line_start = end;
            self.searched = end;
            let Some(line_end) = self.request_line_end else {
                self.request_line_end = Some(end);
                continue;
            };
            self.header_lines += 1;
            if self.header_lines > MAX_HEADER_LINES {
                return Scan::Reject(Rejection {
                    explain: Some(format!("got more than {MAX_HEADER_LINES} headers")),
                    ..Rejection::new(431, Some("Too many headers".into()))
                });
            }
            if line == b"\r\n" || line == b"\n" {
                return Scan::Complete {
                    line_end,
                    head_end: end,
                };
            }
        }
    }

    fn line_too_long(&self) -> Rejection {
        match self.request_line_end {
            None => Rejection::new(414, None),
            Some(_) => header_line_too_long(),
        }
    }
}

fn header_line_too_long() -> Rejection {
    Rejection {
        explain: Some(format!(
            "got more than {MAX_LINE} bytes when reading header line"
        )),
        ..Rejection::new(431, Some("Line too long".into()))
    }
}

pub const EMPTY_HEADER: httparse::Header<'static> = httparse::Header {
    name: "",
    value: b"",
};

/// Parses the header block (from after the request line to the end of the
/// head) into `headers`, returning how many there are.
///
/// Strict, unlike Python (whose parser stops quietly at the first line that
/// does not look like `name:` and takes the rest for body): any line
/// `httparse` refuses (whitespace before the colon, a bare CR, a control
/// byte, a space in a name, an obs-fold continuation, a line without a
/// colon) is a 400, because a lenient reading that drops a line could drop
/// a `Content-Length` and let the body be read as a request (RFC 9112 2.2,
/// 5.1, 5.2).
pub fn parse_headers<'b>(
    block: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<usize, Rejection> {
    match httparse::parse_headers(block, headers) {
        Ok(httparse::Status::Complete((_, parsed))) => {
            let n = parsed.len();
            // httparse leaves trailing whitespace in values; a value is
            // compared and copied without it (RFC 9110 5.5).
            for h in headers[..n].iter_mut() {
                h.value = trim_ows(h.value);
            }
            Ok(n)
        }
        Ok(httparse::Status::Partial) => Err(bad_request("Bad header block")),
        Err(httparse::Error::HeaderName) => Err(bad_request("Bad header name")),
        Err(httparse::Error::HeaderValue) => Err(bad_request("Bad header value")),
        Err(httparse::Error::NewLine) => Err(bad_request("Bad line ending in the header block")),
        Err(httparse::Error::TooManyHeaders) => Err(Rejection {
            explain: Some(format!("got more than {MAX_HEADER_LINES} headers")),
            ..Rejection::new(431, Some("Too many headers".into()))
        }),
        Err(_) => Err(bad_request("Bad header line")),
    }
}

/// Header lines most requests stay within: the array a head is parsed
/// into first, because clearing room for all [`MAX_HEADER_LINES`] on
/// every request was a tenth of a small request's cost.
pub const FEW_HEADER_LINES: usize = 24;

/// [`parse_headers`] into `few`, or, when the head has more lines than
/// that, into `many` (made then).
pub fn parse_headers_into<'b, 'h>(
    block: &'b [u8],
    few: &'h mut [httparse::Header<'b>; FEW_HEADER_LINES],
    many: &'h mut Option<[httparse::Header<'b>; MAX_HEADER_LINES]>,
) -> Result<&'h [httparse::Header<'b>], Rejection> {
    match parse_headers(block, few) {
        Ok(n) => Ok(&few[..n]),
        Err(r) if r.status == 431 => {
            let many = many.insert([EMPTY_HEADER; MAX_HEADER_LINES]);
            let n = parse_headers(block, many)?;
            Ok(&many[..n])
        }
        Err(r) => Err(r),
    }
}

/// Bytes allowed in an RFC 9110 token (`tchar`), as a table: checked for
/// every header name a handler sends.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

/// A byte allowed in a token.
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// An RFC 9110 token: a field name, a method.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| TCHAR[usize::from(b)])
}

fn bad_request(message: &str) -> Rejection {
    Rejection::new(400, Some(message.into()))
}

/// How a request's body is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`, or no body at all (0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl BodyFraming {
    pub const NONE: BodyFraming = BodyFraming::Length(0);
}

/// Checks what decides where this request ends, and answers 400 (or 501)
/// wherever two readings could differ, so no body is ever read as a
/// request: more than one `Host` line (RFC 9112 3.2), a `Content-Length`
/// that is not one decimal number (RFC 9110 8.6: `+4`, `-5`, `abc`,
/// overflow, or a list or several lines with different values), a
/// `Transfer-Encoding` other than exactly `chunked` (RFC 9112 6.3 items 3
/// and 4), both of them together, or a transfer coding in HTTP/1.0 (6.1).
/// Every such answer closes the connection.
pub fn body_framing(
    version: Version,
    headers: &[httparse::Header],
) -> Result<BodyFraming, Rejection> {
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut codings = 0;
    let mut chunked = 0;
    let mut chunked_last = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("Host") {
            hosts += 1;
            if hosts > 1 {
                return Err(bad_request("Duplicate Host header"));
            }
            if !is_host(h.value) {
                return Err(bad_request("Bad Host header"));
            }
        } else if h.name.eq_ignore_ascii_case("Content-Length") {
            for item in h.value.split(|&b| b == b',') {
                let n = parse_content_length(trim_ows(item))
                    .ok_or_else(|| bad_request("Bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad_request("Conflicting Content-Length"));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("Transfer-Encoding") {
            for item in h.value.split(|&b| b == b',') {
                let coding = trim_ows(item);
                if coding.is_empty() {
                    continue;
                }
                codings += 1;
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                chunked += usize::from(chunked_last);
            }
            if codings == 0 {
                return Err(bad_request("Bad Transfer-Encoding"));
            }
        }
    }
    if codings == 0 {
        return Ok(BodyFraming::Length(length.unwrap_or(0)));
    }
    if version < Version::HTTP_11 {
        return Err(bad_request("Transfer-Encoding in an HTTP/1.0 request"));
    }
    if length.is_some() {
        return Err(bad_request("Both Transfer-Encoding and Content-Length"));
    }
    if !chunked_last || chunked > 1 {
        // Chunked must be the last coding, applied once (RFC 9112 6.1, 7).
        return Err(bad_request("Transfer-Encoding does not end in chunked"));
    }
    if codings > 1 {
        return Err(Rejection::new(
            501,
            Some("Unsupported transfer coding".into()),
        ));
    }
    Ok(BodyFraming::Chunked)
}

/// `uri-host [ ":" port ]` (RFC 9112 3.2, RFC 3986 3.2.2), or empty: the
/// bytes a host name, an IP literal and a port are made of. No space, no
/// `@` (user info), no `/`, `?` or `#`, no control or non-ASCII byte.
fn is_host(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            )
    })
}

/// `1*DIGIT` that fits in a u64; nothing else (no sign, no spaces).
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A `Transfer-Encoding` value whose last coding is `chunked`: the only
/// one whose end a client can find without the connection closing.
pub fn ends_chunked(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .rfind(|c| !c.is_empty())
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// `s` without the optional whitespace (spaces and tabs, RFC 9110 5.6.3)
/// around it.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The first header with this name, as Python's `headers.get(name)`.
pub fn header<'b>(headers: &[httparse::Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The value of `name` when it comes on exactly one line: a field that
/// is not a list (a date) is ignored when repeated (RFC 9110 5.3).
pub fn header_once<'b>(headers: &[httparse::Header<'b>], name: &str) -> Option<&'b [u8]> {
    let mut lines = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
    let first = lines.next()?;
    lines.next().is_none().then_some(first.value)
}

/// A list-valued field's lines joined into one list (`a, b`), as RFC
/// 9110 5.3 reads them; borrowed when there is one line.
pub fn header_joined<'b>(
    headers: &[httparse::Header<'b>],
    name: &str,
) -> Option<std::borrow::Cow<'b, [u8]>> {
    let mut lines = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
    let first = lines.next()?;
    let Some(second) = lines.next() else {
        return Some(std::borrow::Cow::Borrowed(first.value));
    };
    let mut all = first.value.to_vec();
    for h in std::iter::once(second).chain(lines) {
        all.extend_from_slice(b", ");
        all.extend_from_slice(h.value);
    }
    Some(std::borrow::Cow::Owned(all))
}

/// Every line of the header `name`, in order, or `None` if there is none:
/// for list-valued fields, whose lines together make one list.
pub fn header_lines<'h, 'b>(
    headers: &'h [httparse::Header<'b>],
    name: &'h str,
) -> Option<impl Iterator<Item = &'b [u8]> + 'h> {
    let first = headers
        .iter()
        .position(|h| h.name.eq_ignore_ascii_case(name))?;
    Some(
        headers[first..]
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value),
    )
}

/// Does a comma-separated header value hold `token` (case-insensitively)?
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values() {
        for good in [
            &b""[..],
            b"example.com",
            b"127.0.0.1:8080",
            b"[::1]:80",
            b"a-b_c~d",
            b"x,y",
        ] {
            assert!(is_host(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"a b"[..],
            b"a@b",
            b"x/y",
            b"h?q",
            b"h#f",
            b"caf\xc3\xa9",
            b"a\tb",
            b"a\"b",
        ] {
            assert!(!is_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn heads_past_the_few_lines_still_parse() {
        for n in [0, FEW_HEADER_LINES, FEW_HEADER_LINES + 1, MAX_HEADER_LINES] {
            let block: String = (0..n)
                .map(|i| format!("X-{i}: v{i}\r\n"))
                .collect::<String>()
                + "\r\n";
            let (mut few, mut many) = ([EMPTY_HEADER; FEW_HEADER_LINES], None);
            let h = parse_headers_into(block.as_bytes(), &mut few, &mut many).unwrap();
            assert_eq!(h.len(), n);
            if n > 0 {
                assert_eq!(h[n - 1].value, format!("v{}", n - 1).as_bytes());
            }
        }
        let block: String = (0..=MAX_HEADER_LINES)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
            + "\r\n";
        let (mut few, mut many) = ([EMPTY_HEADER; FEW_HEADER_LINES], None);
        let e = parse_headers_into(block.as_bytes(), &mut few, &mut many).unwrap_err();
        assert_eq!(e.status, 431);
    }

    fn line(s: &[u8]) -> Result<Option<RequestLine<'_>>, Rejection> {
        parse_request_line(s)
    }

    #[test]
    fn request_lines() {
        let r = line(b"GET /a HTTP/1.1\r\n").unwrap().unwrap();
        assert_eq!(
            (r.method, r.target, r.version),
            (&b"GET"[..], &b"/a"[..], Version::HTTP_11)
        );
        let r = line(b"GET\t/a   HTTP/1.0").unwrap().unwrap();
        assert_eq!(r.version, Version::HTTP_10);
        let r = line(b"GET /").unwrap().unwrap();
        assert_eq!(r.version, Version::Http09);
        let r = line(b"GET ///evil.com/x HTTP/1.1").unwrap().unwrap();
        assert_eq!(r.target, b"/evil.com/x");
        assert_eq!(line(b"\r\n").unwrap(), None);
        assert_eq!(line(b"  \r\n").unwrap(), None);
    }

    #[test]
    fn versions_as_python() {
        let r = line(b"GET / HTTP/01.10").unwrap().unwrap();
        assert_eq!(
            r.version,
            Version::Http {
                major: 1,
                minor: 10
            }
        );
        for bad in [
            &b"GET / HTTP/1"[..],
            b"GET / http/1.1",
            b"GET / HTTP/a.b",
            b"GET / HTTP/1.1.1",
            b"GET / HTTP/.1",
            b"GET / HTTP/12345678901.1",
        ] {
            let e = line(bad).unwrap_err();
            assert_eq!(e.status, 400, "{:?}", String::from_utf8_lossy(bad));
            assert!(e.before_version);
        }
        let e = line(b"GET / HTTP/2.0").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_deref()),
            (505, Some("Invalid HTTP version (2.0)"))
        );
        let e = line(b"GET / HTTP/1").unwrap_err();
        assert_eq!(e.message.as_deref(), Some("Bad request version ('HTTP/1')"));
    }

    #[test]
    fn syntax_errors_as_python() {
        let e = line(b"GET / x HTTP/1.1").unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Bad request syntax ('GET / x HTTP/1.1')")
        );
        assert!(!e.before_version);
        let e = line(b"POST /").unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Bad HTTP/0.9 request type ('POST')")
        );
        let e = line(b"GET").unwrap_err();
        assert_eq!(e.message.as_deref(), Some("Bad request syntax ('GET')"));
    }

    fn scan_all(buf: &[u8]) -> Scan {
        let mut s = HeadScan::default();
        loop {
            match s.advance(buf) {
                Scan::RequestLine(_) => continue,
                other => return other,
            }
        }
    }

    #[test]
    fn scan_complete_and_partial() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        assert_eq!(
            scan_all(req),
            Scan::Complete {
                line_end: 16,
                head_end: 27
            }
        );
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nHost: x\r\n"), Scan::Partial);
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\n\n"),
            Scan::Complete {
                line_end: 15,
                head_end: 16
            }
        );
    }

    #[test]
    fn scan_byte_by_byte_equals_whole() {
        let req = b"GET /x HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        let mut s = HeadScan::default();
        let mut result = None;
        for n in 1..=req.len() {
            match s.advance(&req[..n]) {
                Scan::Partial | Scan::RequestLine(_) => {}
                other => {
                    result = Some((n, other));
                    break;
                }
            }
        }
        assert_eq!(
            result,
            Some((
                req.len(),
                Scan::Complete {
                    line_end: 17,
                    head_end: req.len()
                }
            ))
        );
    }

    #[test]
    fn limits_as_python() {
        let mut long = b"GET /".to_vec();
        long.resize(MAX_LINE - 1, b'a');
        long.push(b'\n'); // exactly 65536 bytes with the newline: accepted
        assert_eq!(
            HeadScan::default().advance(&long),
            Scan::RequestLine(MAX_LINE)
        );
        long.insert(5, b'a');
        match HeadScan::default().advance(&long) {
            Scan::Reject(r) => assert_eq!(r.status, 414),
            other => panic!("{other:?}"),
        }
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(16 + MAX_LINE + 1, b'a');
        match scan_all(&head) {
            Scan::Reject(r) => assert_eq!(
                (r.status, r.message.as_deref()),
                (431, Some("Line too long"))
            ),
            other => panic!("{other:?}"),
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..99 {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(scan_all(&many), Scan::Complete { .. }));
        many.truncate(many.len() - 2);
        many.extend_from_slice(b"H99: v\r\n\r\n");
        match scan_all(&many) {
            Scan::Reject(r) => assert_eq!(
                (r.status, r.message.as_deref()),
                (431, Some("Too many headers"))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn headers_are_strict() {
        let mut h = [EMPTY_HEADER; 8];
        let n = parse_headers(b"Host: a\r\nConnection: close \r\n\r\n", &mut h).unwrap();
        assert_eq!(n, 2);
        assert_eq!(header(&h[..n], "connection"), Some(&b"close"[..]));
        for bad in [
            &b"Host: a\r\nbad line\r\nX: y\r\n\r\n"[..],
            b"Content-Length : 35\r\n\r\n",
            b"X: a\rb\r\n\r\n",
            b"X Y: a\r\n\r\n",
            b"X\x00Y: a\r\n\r\n",
            b"X: a\x00\r\n\r\n",
            b"X: a\r\n b\r\n\r\n",
            b"X-Invalid[]: test\r\n\r\n",
            b"X: test\x07\r\n\r\n",
            b"Content-Length: \x0b4\r\n\r\n",
            b"\rX: y\r\n\r\n",
        ] {
            let e = parse_headers(bad, &mut h).unwrap_err();
            assert_eq!(e.status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(has_token(b"keep-alive, Close", "close"));
        assert!(!has_token(b"closed", "close"));
    }

    fn framing(
        version: Version,
        lines: &[(&'static str, &'static [u8])],
    ) -> Result<BodyFraming, u16> {
        let headers: Vec<httparse::Header> = lines
            .iter()
            .map(|&(name, value)| httparse::Header { name, value })
            .collect();
        body_framing(version, &headers).map_err(|r| r.status)
    }

    #[test]
    fn framing_rules() {
        let v11 = Version::HTTP_11;
        assert_eq!(framing(v11, &[]), Ok(BodyFraming::NONE));
        assert_eq!(
            framing(v11, &[("Content-Length", b"12")]),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            framing(
                v11,
                &[("Content-Length", b"4, 4"), ("content-length", b"4")]
            ),
            Ok(BodyFraming::Length(4))
        );
        assert_eq!(
            framing(v11, &[("Transfer-Encoding", b"Chunked")]),
            Ok(BodyFraming::Chunked)
        );
        for bad in [
            &[("Content-Length", &b"+4"[..])][..],
            &[("Content-Length", b"-5")],
            &[("Content-Length", b"abc")],
            &[("Content-Length", b"")],
            &[("Content-Length", b"99999999999999999999999")],
            &[("Content-Length", b"4, 0")],
            &[("Content-Length", b"4"), ("Content-Length", b"5")],
            &[("Transfer-Encoding", b"chunked, gzip")],
            &[("Transfer-Encoding", b"identity")],
            &[("Transfer-Encoding", b"")],
            &[("Transfer-Encoding", b"chunked"), ("Content-Length", b"3")],
            &[("Host", b"a"), ("host", b"b")],
        ] {
            assert_eq!(framing(v11, bad), Err(400), "{bad:?}");
        }
        assert_eq!(
            framing(v11, &[("Transfer-Encoding", b"gzip, chunked")]),
            Err(501)
        );
        assert_eq!(
            framing(
                v11,
                &[
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b"chunked")
                ]
            ),
            Err(400)
        );
        assert_eq!(
            framing(Version::HTTP_10, &[("Transfer-Encoding", b"chunked")]),
            Err(400)
        );
    }

    #[test]
    fn absolute_form_is_served_as_its_path() {
        for (target, want) in [
            ("http://127.0.0.1:8000/hello.txt", "/hello.txt"),
            ("HTTPS://example.com/a?b=c", "/a?b=c"),
            ("http://example.com", "/"),
            ("http://example.com?q", "/"),
            ("http://example.com//evil.com/x", "/evil.com/x"),
            ("http://example.com///a", "/a"),
            ("/plain", "/plain"),
            ("httpx://a/b", "httpx://a/b"),
        ] {
            let l = format!("GET {target} HTTP/1.1");
            let r = line(l.as_bytes()).unwrap().unwrap();
            assert_eq!(r.target, want.as_bytes(), "{target}");
        }
    }
}
