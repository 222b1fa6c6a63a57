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
    py_repr_str(&latin1_chars(bytes).collect::<String>())
}

/// Python's `repr()` of a string (`{!r}` in a format): quoted with `'`
/// (or `"` if it holds only `'`), backslashes and controls escaped.
/// Python's test of which characters print is its Unicode table; this one
/// knows the controls, separators and format characters that matter in
/// names, and prints the rest.
pub fn py_repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(text.len() + 2);
    s.push(quote);
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            _ if c == quote => {
                s.push('\\');
                s.push(c);
            }
            _ if !py_printable(c) => {
                let code = u32::from(c);
                let escaped = if code < 0x100 {
                    format!("\\x{code:02x}")
                } else if code < 0x10000 {
                    format!("\\u{code:04x}")
                } else {
                    format!("\\U{code:08x}")
                };
                s.push_str(&escaped);
            }
            _ => s.push(c),
        }
    }
    s.push(quote);
    s
}

fn py_printable(c: char) -> bool {
    let code = u32::from(c);
    !(c.is_control()
        || code == 0xa0
        || code == 0xad
        || code == 0x1680
        || (0x2000..=0x200f).contains(&code)
        || (0x2028..=0x202f).contains(&code)
        || (0x205f..=0x206f).contains(&code)
        || code == 0x3000
        || code == 0xfeff
        || (0xe000..=0xf8ff).contains(&code)
        || (0xfff0..=0xfffb).contains(&code))
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

/// [`push_log_text`] of `bytes` read as Latin-1 (a request line), with
/// the printable ASCII prefix, usually all of it, copied as it is.
pub fn push_log_latin1(out: &mut Vec<u8>, bytes: &[u8]) {
    let clean = bytes
        .iter()
        .position(|&b| !(0x20..0x7f).contains(&b) || b == b'\\')
        .unwrap_or(bytes.len());
    out.extend_from_slice(&bytes[..clean]);
    push_log_text(out, latin1_chars(&bytes[clean..]));
}

/// The characters of `bytes` read as Latin-1, as Python decodes request lines.
pub fn latin1_chars(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    bytes.iter().map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_of_latin1_bytes_is_the_same_whatever_its_prefix() {
        for line in [
            &b"GET / HTTP/1.1"[..],
            b"GET /\x1b[31m HTTP/1.1",
            b"GET /a\\b HTTP/1.1",
            b"\xff\x85 x",
            b"",
            b"tail\x7f",
        ] {
            let mut fast = Vec::new();
            push_log_latin1(&mut fast, line);
            let mut slow = Vec::new();
            push_log_text(&mut slow, latin1_chars(line));
            assert_eq!(fast, slow, "{line:?}");
        }
    }

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
    fn str_repr_matches_python() {
        // Expected values are what Python 3.11 prints for repr(s).
        for (text, want) in [
            ("a.py", "'a.py'"),
            ("it's", "\"it's\""),
            ("say \"hi\" it's", "'say \"hi\" it\\'s'"),
            ("tab\there", "'tab\\there'"),
            ("\u{e9} \u{fc} \u{2713}", "'\u{e9} \u{fc} \u{2713}'"),
            ("\0\u{7f}\u{a0}\u{ad}", "'\\x00\\x7f\\xa0\\xad'"),
            ("\u{2028}\u{feff}\u{1f600}", "'\\u2028\\ufeff\u{1f600}'"),
            ("back\\slash", "'back\\\\slash'"),
        ] {
            assert_eq!(py_repr_str(text), want, "{text:?}");
        }
    }

    #[test]
    fn log_escapes_controls_and_backslash() {
        let mut out = Vec::new();
        push_log_text(&mut out, latin1_chars(b"GET /\x1b[31m\\ \x85\xe9"));
        assert_eq!(out, "GET /\\x1b[31m\\\\ \\x85\u{e9}".as_bytes());
    }
}
