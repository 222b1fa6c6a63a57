//! Response heads and Python's error page, written into a byte buffer.

use crate::proto::escape::push_html;
use crate::proto::status;
use std::io::Write;

pub const SERVER: &str = concat!("tinyserve/", env!("CARGO_PKG_VERSION"));

/// Writes one response head into `out`. For an HTTP/0.9 request nothing of
/// the head is written, only its body follows, as Python does.
pub struct Head<'a> {
    out: &'a mut Vec<u8>,
    http09: bool,
}

impl<'a> Head<'a> {
    /// Starts a head with the status line and the `Server` and `Date`
    /// headers Python's `send_response` always sends first.
    pub fn new(out: &'a mut Vec<u8>, proto: &str, code: u16, http09: bool, date: &[u8]) -> Self {
        Head::with_reason(
            out,
            proto,
            code,
            status::phrase(code).as_bytes(),
            http09,
            date,
        )
    }

    /// A head whose status line carries a reason of the caller's choosing:
    /// Python puts its error message there, and CGI scripts their own.
    pub fn with_reason(
        out: &'a mut Vec<u8>,
        proto: &str,
        code: u16,
        reason: &[u8],
        http09: bool,
        date: &[u8],
    ) -> Self {
        let mut head = Head::status_line(out, proto, code, reason, http09);
        head.header("Server", SERVER.as_bytes());
        head.header("Date", date);
        head
    }

    /// A status line only, with the reason given: the caller adds every
    /// header (the handler API adds its own `Server`).
    pub fn status_line_only(
        out: &'a mut Vec<u8>,
        proto: &str,
        code: u16,
        reason: &[u8],
        http09: bool,
    ) -> Self {
        Head::status_line(out, proto, code, reason, http09)
    }

    /// A status line with no standard headers (`100 Continue`).
    pub fn bare(out: &'a mut Vec<u8>, proto: &str, code: u16, http09: bool) -> Self {
        Head::status_line(out, proto, code, status::phrase(code).as_bytes(), http09)
    }

    fn status_line(
        out: &'a mut Vec<u8>,
        proto: &str,
        code: u16,
        reason: &[u8],
        http09: bool,
    ) -> Self {
        if !http09 {
            out.extend_from_slice(proto.as_bytes());
            out.push(b' ');
            push_decimal(out, u64::from(code));
            out.push(b' ');
            // A reason can never end the line early.
            if memchr::memchr2(b'\r', b'\n', reason).is_none() {
                out.extend_from_slice(reason);
            } else {
                out.extend(
                    reason
                        .iter()
                        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
            }
            out.extend_from_slice(b"\r\n");
        }
        Head { out, http09 }
    }

    /// Adds `name: value`. A value holding CR, LF or NUL is left out whole:
    /// such a byte would end the header early and start another (response
    /// splitting). Callers validate what they copy from a request or a
    /// script; this is the last line of defence, not the first.
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        if !self.http09 && !has_line_break(value) {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value);
            self.out.extend_from_slice(b"\r\n");
        }
        self
    }

    /// Appends header lines already formatted (`Name: value\r\n`...), such as
    /// the ones the command line adds to every response.
    pub fn raw(&mut self, lines: &[u8]) -> &mut Self {
        if !self.http09 {
            self.out.extend_from_slice(lines);
        }
        self
    }

    pub fn header_num(&mut self, name: &str, value: u64) -> &mut Self {
        if !self.http09 {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            push_decimal(self.out, value);
            self.out.extend_from_slice(b"\r\n");
        }
        self
    }

    pub fn finish(self) {
        if !self.http09 {
            self.out.extend_from_slice(b"\r\n");
        }
    }
}

/// Holds CR, LF or NUL: a byte that could end a header line early.
pub fn has_line_break(value: &[u8]) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, value).is_some()
}

/// Appends `n` in decimal; `write!` costs several times as much, and this
/// runs for every status line and `Content-Length`.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Python's default error page (`DEFAULT_ERROR_MESSAGE` in Python 3.13).
pub fn push_error_page(out: &mut Vec<u8>, code: u16, message: &str, explain: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        \
         <meta charset=\"utf-8\">\n        <title>Error response</title>\n    \
         </head>\n    <body>\n        <h1>Error response</h1>\n        \
         <p>Error code: {code}</p>\n        <p>Message: "
    );
    push_html(out, message.as_bytes());
    let _ = write!(out, ".</p>\n        <p>Error code explanation: {code} - ");
    push_html(out, explain.as_bytes());
    out.extend_from_slice(b".</p>\n    </body>\n</html>\n");
}

/// A message as Python writes it on a status line: encoded as Latin-1
/// (characters beyond it, which Python would fail on, become `?`).
pub fn latin1(message: &str) -> Vec<u8> {
    message
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Does a response with this status carry a body? (RFC 9112 section 6.3)
pub fn status_has_body(code: u16) -> bool {
    code >= 200 && !matches!(code, 204 | 205 | 304)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_format() {
        let mut out = Vec::new();
        let mut h = Head::new(
            &mut out,
            "HTTP/1.0",
            200,
            false,
            b"Sat, 21 Nov 2026 18:39:29 GMT",
        );
        h.header("Content-type", b"text/plain")
            .header_num("Content-Length", 5);
        h.finish();
        assert_eq!(
            out,
            b"HTTP/1.0 200 OK\r\nServer: tinyserve/0.1.0\r\nDate: Sat, 21 Nov 2026 18:39:29 GMT\r\n\
              Content-type: text/plain\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn decimals() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 404, u64::MAX] {
            push_decimal(&mut out, n);
            out.push(b',');
        }
        assert_eq!(out, format!("0,7,10,404,{},", u64::MAX).into_bytes());
    }

    #[test]
    fn http09_has_no_head() {
        let mut out = Vec::new();
        let mut h = Head::new(&mut out, "HTTP/1.0", 200, true, b"x");
        h.header("Content-type", b"text/plain");
        h.finish();
        assert!(out.is_empty());
    }

    #[test]
    fn error_page_is_pythons() {
        let mut out = Vec::new();
        push_error_page(
            &mut out,
            404,
            "File <not> found",
            "Nothing matches the given URI",
        );
        let expected = "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        <p>Error code: 404</p>\n        <p>Message: File &lt;not&gt; found.</p>\n        <p>Error code explanation: 404 - Nothing matches the given URI.</p>\n    </body>\n</html>\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
