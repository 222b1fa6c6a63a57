//! Text escapes that must come out byte-for-byte as Python's do: `html.escape`
//! (with `quote=False`), `repr()` of a Latin-1 string, and the control
//! character table Python 3.12+ applies to every log message.

/// Appends `text` with `&`, `<` and `>` escaped, as `html.escape(s, quote=False)`.
pub fn push_html(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let esc: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// Python's `repr()` of the string made by decoding `bytes` as Latin-1, which
/// is how `http.server` quotes request words in its error messages.
pub fn py_repr_latin1(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push(quote);
    for &b in bytes {
        let c = char::from(b);
        match c {
            '\\' => s.push_str("\\\\"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            _ if c == quote => {
                s.push('\\');
                s.push(c);
            }
            // Latin-1 characters Python does not consider printable.
            _ if b < 0x20 || (0x7f..=0xa0).contains(&b) || b == 0xad => {
                s.push_str(&format!("\\x{b:02x}"));
            }
            _ => s.push(c),
        }
    }
    s.push(quote);
    s
}

/// Appends `chars` as Python 3.12+'s `log_message` writes them: C0 and C1
/// control characters become `\xNN` and a backslash is doubled, so a client
/// cannot forge log lines or terminal escapes.
pub fn push_log_text(out: &mut Vec<u8>, chars: impl Iterator<Item = char>) {
    for c in chars {
        let code = u32::from(c);
        if code < 0x20 || (0x7f..0xa0).contains(&code) {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\x");
            out.push(HEX[(code >> 4) as usize]);
            out.push(HEX[(code & 0xf) as usize]);
        } else if c == '\\' {
            out.extend_from_slice(b"\\\\");
        } else {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// The characters of `bytes` read as Latin-1, as Python decodes request lines.
pub fn latin1_chars(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    bytes.iter().map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_without_quotes() {
        let mut out = Vec::new();
        push_html(&mut out, b"a&b <c> \"d\" 'e'");
        assert_eq!(out, b"a&amp;b &lt;c&gt; \"d\" 'e'");
    }

    #[test]
    fn repr_matches_python() {
        // Expected values are what Python 3.13 prints for repr(b.decode('latin-1')).
        assert_eq!(py_repr_latin1(b"HTTP/2"), "'HTTP/2'");
        assert_eq!(py_repr_latin1(b"it's"), "\"it's\"");
        assert_eq!(py_repr_latin1(b"'\""), "'\\'\"'");
        assert_eq!(py_repr_latin1(b"a\tb\x00\x7f\\"), "'a\\tb\\x00\\x7f\\\\'");
        assert_eq!(
            py_repr_latin1(b"\xe9\xa0\xad\xff"),
            "'\u{e9}\\xa0\\xad\u{ff}'"
        );
    }

    #[test]
    fn log_escapes_controls_and_backslash() {
        let mut out = Vec::new();
        push_log_text(&mut out, latin1_chars(b"GET /\x1b[31m\\ \x85\xe9"));
        assert_eq!(out, "GET /\\x1b[31m\\\\ \\x85\u{e9}".as_bytes());
    }
}
