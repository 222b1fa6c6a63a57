//! What a CGI script says: the header block at the start of its output
//! (RFC 3875 section 6), which Python passes on as it is and we parse,
//! refusing whatever a client could read differently from us.

use crate::proto::request;

/// The longest script output header we accept.
pub const MAX_OUTPUT_HEAD: usize = 64 * 1024;

/// The script's output header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputHead {
    pub status: u16,
    /// The reason phrase the script gave, if any.
    pub reason: Option<Vec<u8>>,
    /// Headers to pass on, in order, without the ones we set ourselves.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub content_length: Option<u64>,
    /// A `Location` that is a path on this server (served in place).
    pub local_redirect: Option<Vec<u8>>,
    /// Bytes of the buffer the head took.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputParse {
    /// The blank line has not come yet.
    Partial,
    Complete(OutputHead),
    /// Not a CGI header (or too long): answered with 502.
    Invalid(&'static str),
}

/// Header fields a script may not set: the framing and the connection are
/// ours to choose (hop-by-hop, RFC 9110 7.6.1), and `Date` and `Server` are
/// ours too, so a response never carries two of either.
const NOT_FROM_SCRIPTS: [&[u8]; 9] = [
    b"Transfer-Encoding",
    b"Connection",
    b"Keep-Alive",
    b"Upgrade",
    b"TE",
    b"Trailer",
    b"Proxy-Connection",
    b"Date",
    b"Server",
];

/// A control byte other than HTAB: never allowed in a field or a reason
/// phrase (RFC 9110 5.5, RFC 9112 4). A bare CR passed on would let a
/// script that strips only `\n` from user input inject a header.
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

use super::request::is_token;

/// Parses the header block at the start of a script's output. Anything a
/// client could read differently from us is refused (502): a control byte
/// anywhere (a bare CR included), a name that is not a token, a `Status`
/// that is not three digits from 200 to 599 (a 1xx is not a final answer),
/// a malformed or contradictory `Content-Length`.
pub fn parse_output_head(buf: &[u8]) -> OutputParse {
    let mut headers = Vec::new();
    let mut status = None;
    let mut reason = None;
    let mut content_length = None;
    let mut location = None;
    let mut pos = 0;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            return if buf.len() > MAX_OUTPUT_HEAD {
                OutputParse::Invalid("the script's header is too long")
            } else {
                OutputParse::Partial
            };
        };
        if pos + nl > MAX_OUTPUT_HEAD {
            return OutputParse::Invalid("the script's header is too long");
        }
        let line = &buf[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        if line.iter().any(|&b| is_ctl(b)) {
            return OutputParse::Invalid("the script sent a control character in its header");
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return OutputParse::Invalid("the script sent a header line without a colon");
        };
        let name = &line[..colon];
        if !is_token(name) {
            return OutputParse::Invalid("the script sent a malformed header name");
        }
        let value = request::trim_ows(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"Status") {
            let code = value
                .get(..3)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u16>().ok());
            match code {
                Some(c) if (200..=599).contains(&c) && value.get(3).is_none_or(|&b| b == b' ') => {
                    status = Some(c);
                    let r = request::trim_ows(&value[3..]);
                    reason = (!r.is_empty()).then(|| r.to_vec());
                }
                Some(c) if (100..200).contains(&c) => {
                    return OutputParse::Invalid("the script sent an interim (1xx) status");
                }
                _ => return OutputParse::Invalid("the script sent a malformed Status"),
            }
        } else if name.eq_ignore_ascii_case(b"Content-Length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (n, content_length) {
                (Some(n), None) => content_length = Some(n),
                (Some(n), Some(before)) if n == before => {}
                _ => return OutputParse::Invalid("the script sent a bad Content-Length"),
            }
        } else if NOT_FROM_SCRIPTS
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            // Ours to set.
        } else {
            if name.eq_ignore_ascii_case(b"Location") {
                location = Some(value.to_vec());
            }
            headers.push((name.to_vec(), value.to_vec()));
        }
    }
    let mut local_redirect = None;
    let status = match (status, &location) {
        (Some(s), _) => s,
        (None, Some(loc)) if loc.starts_with(b"/") => {
            local_redirect = Some(loc.clone());
            200
        }
        (None, Some(_)) => 302,
        (None, None) => 200,
    };
    OutputParse::Complete(OutputHead {
        status,
        reason,
        headers,
        content_length,
        local_redirect,
        len: pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_head_rules() {
        let OutputParse::Complete(h) = parse_output_head(b"Content-Type: text/plain\n\nbody")
        else {
            panic!()
        };
        assert_eq!((h.status, h.len), (200, 26));
        let OutputParse::Complete(h) =
            parse_output_head(b"Status: 404 Nope\r\nContent-Length: 3\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            (h.status, h.reason.as_deref(), h.content_length),
            (404, Some(&b"Nope"[..]), Some(3))
        );
        let OutputParse::Complete(h) = parse_output_head(b"Location: http://x/\n\n") else {
            panic!()
        };
        assert_eq!(h.status, 302);
        let OutputParse::Complete(h) = parse_output_head(b"Location: /other\n\n") else {
            panic!()
        };
        assert_eq!(h.local_redirect.as_deref(), Some(&b"/other"[..]));
        assert_eq!(
            parse_output_head(b"Content-Type: x\n"),
            OutputParse::Partial
        );
        assert!(matches!(
            parse_output_head(b"hello world\n\n"),
            OutputParse::Invalid(_)
        ));
        assert!(matches!(
            parse_output_head(b"Status: abc\n\n"),
            OutputParse::Invalid(_)
        ));
        assert!(matches!(
            parse_output_head(&vec![b'a'; MAX_OUTPUT_HEAD + 1]),
            OutputParse::Invalid(_)
        ));
        for bad in [
            &b"X-A: one\rSet-Cookie: crinj=1\n\n"[..],
            b"X-A: nul\x00\n\n",
            b"Status: 200 OK\x01\x1b[31mred\n\n",
            b"Status: 100 Continue\n\n",
            b"Status: 101 Switching Protocols\nUpgrade: websocket\n\n",
            b"X(A): b\n\n",
            b"Content-Length: 4x\n\n",
            b"Content-Length: 4\nContent-Length: 5\n\n",
        ] {
            assert!(
                matches!(parse_output_head(bad), OutputParse::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let OutputParse::Complete(h) =
            parse_output_head(b"Date: x\nServer: y\nX-Tab: a\tb\nKeep-Alive: 5\n\n")
        else {
            panic!()
        };
        assert_eq!(h.headers, vec![(b"X-Tab".to_vec(), b"a\tb".to_vec())]);
    }
}
