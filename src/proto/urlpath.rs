//! Request targets to file system paths, and file names back to links.
//!
//! This follows `SimpleHTTPRequestHandler.translate_path`: drop the query and
//! fragment, percent-decode (UTF-8, with Python's `surrogatepass` trick for
//! undecodable bytes), resolve `.`/`..` and empty segments lexically, and
//! never produce a path that climbs out of the served directory. The result
//! is a path *relative* to the served directory, written into a buffer the
//! caller reuses, so translating costs no allocation on the hot path.

/// The parts of a request target, split the way `urllib.parse.urlsplit` does.
pub struct Target<'a> {
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub fragment: &'a [u8],
}

pub fn split_target(target: &[u8]) -> Target<'_> {
    let (rest, fragment) = match memchr::memchr(b'#', target) {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let (path, query) = match memchr::memchr(b'?', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    Target {
        path,
        query,
        fragment,
    }
}

/// What `translate` found out about the target besides the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translated {
    /// The URL path ended in `/`: a file must then answer 404, as in Python.
    pub trailing_slash: bool,
    /// A decoded segment held a NUL byte; no file can have that name.
    pub has_nul: bool,
}

/// Writes into `out` the path, relative to the served directory, that
/// `target` names (empty for the directory itself). No segment of the result
/// is empty, `.` or `..`, so joining it to the root cannot leave the root.
pub fn translate(target: &[u8], out: &mut Vec<u8>) -> Translated {
    translate_with(target, out, true)
}

/// [`translate`] for a target that has been percent-decoded already (a
/// CGI path, which `cgi::collapse_path` decodes): the same normalization,
/// and no second decoding, which would turn `%252e` into `.`.
pub fn translate_decoded(target: &[u8], out: &mut Vec<u8>) -> Translated {
    translate_with(target, out, false)
}

fn translate_with(target: &[u8], out: &mut Vec<u8>, decode: bool) -> Translated {
    let path = split_target(target).path;
    let trailing_slash = path.last() == Some(&b'/');
    out.clear();
    if decode {
        percent_decode_into(path, out);
        fix_utf8(out, false);
    } else {
        out.extend_from_slice(path);
    }
    normalize_in_place(out);
    Translated {
        trailing_slash,
        has_nul: out.contains(&0),
    }
}

/// The target as Python shows it in a listing's title: the whole target
/// (query included) percent-decoded, not normalized.
pub fn display_path(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len());
    percent_decode_into(target, &mut out);
    fix_utf8(&mut out, true);
    out
}

/// `%XX` becomes the byte XX; a `%` not followed by two hex digits stays.
fn percent_decode_into(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                input.get(i + 1).and_then(|&h| super::hex_digit(h)),
                input.get(i + 2).and_then(|&l| super::hex_digit(l)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
}

/// Python decodes the percent-decoded bytes as UTF-8 with `surrogatepass`
/// and the file system encodes them back with `surrogateescape`. The net
/// effect on bytes: the UTF-8 form of U+DC80..U+DCFF (how Python's own
/// listings link undecodable names) turns back into the raw byte. If the
/// bytes are not UTF-8 at all, Python replaces every invalid sequence with
/// U+FFFD (`lossy`, for display); for file names we keep the bytes as they
/// are, so a file whose name is not UTF-8 can be reached (`%FF`, or raw).
fn fix_utf8(bytes: &mut Vec<u8>, lossy: bool) {
    match scan_utf8_with_surrogates(bytes) {
        Utf8Scan::Valid { escapes: false } => {}
        Utf8Scan::Valid { escapes: true } => {
            let mut w = 0;
            let mut r = 0;
            while r < bytes.len() {
                if let Some(raw) = surrogate_escape_at(&bytes[r..]) {
                    bytes[w] = raw;
                    r += 3;
                } else {
                    bytes[w] = bytes[r];
                    r += 1;
                }
                w += 1;
            }
            bytes.truncate(w);
        }
        Utf8Scan::Invalid if !lossy => {}
        Utf8Scan::Invalid => {
            let fixed = String::from_utf8_lossy(bytes).into_owned();
            *bytes = fixed.into_bytes();
        }
    }
}

enum Utf8Scan {
    Valid { escapes: bool },
    Invalid,
}

/// Is `bytes` UTF-8 if encoded surrogates (`ED A0..BF xx`) are allowed?
fn scan_utf8_with_surrogates(mut bytes: &[u8]) -> Utf8Scan {
    let mut escapes = false;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => return Utf8Scan::Valid { escapes },
            Err(e) => {
                let rest = &bytes[e.valid_up_to()..];
                match rest {
                    [0xED, 0xA0..=0xBF, 0x80..=0xBF, ..] => {
                        escapes |= surrogate_escape_at(rest).is_some();
                        bytes = &rest[3..];
                    }
                    _ => return Utf8Scan::Invalid,
                }
            }
        }
    }
}

/// The raw byte that Python's `surrogateescape` stands for at the start of
/// `bytes` (U+DC80..U+DCFF in UTF-8), if there is one.
fn surrogate_escape_at(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0xED, b1 @ 0xB2..=0xB3, b2 @ 0x80..=0xBF, ..] => {
            Some(0x80 + ((b1 & 1) << 6) + (b2 & 0x3F))
        }
        _ => None,
    }
}

/// Resolves `.`, `..` and empty segments, dropping any `..` that would climb
/// above the start, and joins what is left with single slashes.
fn normalize_in_place(buf: &mut Vec<u8>) {
    let mut w = 0; // end of the normalized prefix
    let mut r = 0;
    let len = buf.len();
    while r <= len {
        let end = memchr::memchr(b'/', &buf[r..]).map_or(len, |i| r + i);
        let seg_len = end - r;
        match &buf[r..end] {
            b"" | b"." => {}
            b".." => w = buf[..w].iter().rposition(|&b| b == b'/').unwrap_or(0),
            _ => {
                if w > 0 {
                    buf[w] = b'/';
                    w += 1;
                }
                buf.copy_within(r..end, w);
                w += seg_len;
            }
        }
        r = end + 1;
    }
    buf.truncate(w);
}

/// Appends a file name as a link target, as Python's
/// `urllib.parse.quote(name, errors='surrogatepass')` writes it: unreserved
/// bytes and `/` stay, the rest is `%XX`, and a byte that is not UTF-8 is
/// written as the encoded surrogate `surrogateescape` maps it to.
pub fn push_quoted(out: &mut Vec<u8>, name: &[u8]) {
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(_) => (rest.len(), None),
            Err(e) => (e.valid_up_to(), Some(rest[e.valid_up_to()])),
        };
        for &b in &rest[..valid] {
            push_quoted_byte(out, b);
        }
        match bad {
            None => break,
            Some(b) => {
                let cp = 0xDC00u32 + u32::from(b);
                push_percent(out, 0xED);
                push_percent(out, 0x80 | ((cp >> 6) & 0x3F) as u8);
                push_percent(out, 0x80 | (cp & 0x3F) as u8);
                rest = &rest[valid + 1..];
            }
        }
    }
}

fn push_quoted_byte(out: &mut Vec<u8>, b: u8) {
    if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/') {
        out.push(b);
    } else {
        push_percent(out, b);
    }
}

fn push_percent(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(target: &str) -> (String, Translated) {
        let mut out = Vec::new();
        let t = translate(target.as_bytes(), &mut out);
        (String::from_utf8_lossy(&out).into_owned(), t)
    }

    #[test]
    fn plain_paths() {
        assert_eq!(tr("/").0, "");
        assert_eq!(tr("/a/b.txt").0, "a/b.txt");
        assert!(tr("/a/").1.trailing_slash);
        assert!(!tr("/a").1.trailing_slash);
        assert_eq!(tr("/a.txt?x=/y#z").0, "a.txt");
        assert_eq!(tr("/a.txt#x?y").0, "a.txt");
    }

    #[test]
    fn dot_segments_never_escape() {
        for t in [
            "/../../etc/passwd",
            "/%2e%2e/%2E%2E/etc/passwd",
            "/a/../../../etc/passwd",
            "/..%2f..%2fetc/passwd",
            "../etc/passwd",
            "//etc/passwd",
            "/./etc/./passwd",
        ] {
            assert_eq!(tr(t).0, "etc/passwd", "{t}");
        }
        assert_eq!(tr("/a/b/../..").0, "");
        assert_eq!(tr("/a/./b//c/").0, "a/b/c");
    }

    #[test]
    fn backslash_is_an_ordinary_byte() {
        assert_eq!(tr("/..\\..\\etc").0, "..\\..\\etc");
        assert_eq!(tr("/%5c..%5c").0, "\\..\\");
    }

    #[test]
    fn nul_is_flagged() {
        assert!(tr("/a%00.txt").1.has_nul);
        assert!(!tr("/a.txt").1.has_nul);
    }

    #[test]
    fn utf8_and_surrogate_escapes() {
        assert_eq!(tr("/%C3%BCn.txt").0, "ün.txt");
        // Python links the undecodable byte 0xff as the surrogate U+DCFF.
        let mut out = Vec::new();
        translate(b"/bad%ED%B3%BF.txt", &mut out);
        assert_eq!(out, b"bad\xff.txt");
        // A bare invalid byte stays itself (Python replaces it with U+FFFD,
        // and so do we in a listing's title).
        let mut out = Vec::new();
        translate(b"/bad%FF.txt", &mut out);
        assert_eq!(out, b"bad\xff.txt");
        assert_eq!(display_path(b"/bad%FF"), "/bad\u{fffd}".as_bytes());
    }

    #[test]
    fn quoting_matches_python() {
        let mut out = Vec::new();
        push_quoted(&mut out, "sp ace&ü~/".as_bytes());
        assert_eq!(out, b"sp%20ace%26%C3%BC~/");
        out.clear();
        push_quoted(&mut out, b"bad\xff.txt");
        assert_eq!(out, b"bad%ED%B3%BF.txt");
    }

    #[test]
    fn split_like_urlsplit() {
        let t = split_target(b"/d?x=1#f?g");
        assert_eq!(
            (t.path, t.query, t.fragment),
            (&b"/d"[..], &b"x=1"[..], &b"f?g"[..])
        );
    }
}
