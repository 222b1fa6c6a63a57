//! Form bodies, parsed as they arrive: `application/x-www-form-urlencoded`
//! (Python's `parse_qsl`) and `multipart/form-data` (RFC 7578), the two a
//! browser posts. No I/O: the multipart parser hands each part's head and
//! its data, a piece at a time, to a [`PartSink`]; where the data goes
//! (memory, a file) is the sink's business.
//!
//! Bounded: a part's head at most [`MAX_PART_HEAD`] bytes; the parser holds
//! at most one boundary's length of data back while it looks for the next
//! delimiter, whatever the size of the parts.

/// Longest head of one part (its `Content-Disposition` and friends).
pub const MAX_PART_HEAD: usize = 8 * 1024;

/// What a multipart part says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHead {
    /// `Content-Disposition: form-data; name="..."`.
    pub name: String,
    /// `filename="..."`: the part is an uploaded file.
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// Where a multipart body's parts go.
pub trait PartSink {
    /// A new part begins.
    fn part(&mut self, head: PartHead) -> Result<(), FormError>;
    /// More of the current part's data.
    fn data(&mut self, piece: &[u8]) -> Result<(), FormError>;
    /// The current part is complete.
    fn part_end(&mut self) -> Result<(), FormError>;
}

/// Why a form was refused: the status to answer (400 malformed, 413 too
/// large, 500 the sink could not store it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    pub status: u16,
    pub message: &'static str,
}

impl FormError {
    pub const fn bad(message: &'static str) -> FormError {
        FormError {
            status: 400,
            message,
        }
    }

    pub const fn too_large(message: &'static str) -> FormError {
        FormError {
            status: 413,
            message,
        }
    }
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = parse_header_params(content_type);
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// `value; key=v; key="quoted \" v"` as Python's `cgi.parse_header` reads
/// it: the main value and the parameters, quotes and backslashes undone.
pub fn parse_header_params(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(value).into_iter();
    let main = parts.next().unwrap_or_default().trim().to_owned();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => unescape_quoted(inner),
                None => v.to_owned(),
            };
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (main, params)
}

/// Splits on `;` outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn unescape_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
            continue;
        }
        out.push(c);
    }
    out
}

/// `a=1&b=x+y&c=%41` as Python's `parse_qsl` reads it (also `;`-free: `&`
/// only, as Python 3.10+): names and values `+`- and percent-decoded, as
/// UTF-8 with invalid bytes replaced. Pairs with an empty value are
/// dropped unless `keep_blank`, as in `cgi.FieldStorage`'s default.
pub fn parse_urlencoded(body: &[u8], keep_blank: bool) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None if keep_blank => (pair, &b""[..]),
                None => return None,
            };
            if value.is_empty() && !keep_blank {
                return None;
            }
            Some((form_decode(name), form_decode(value)))
        })
        .collect()
}

/// `+` is a space, `%XX` a byte; the result as UTF-8 (lossy).
fn form_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                match (super::hex_digit(s[i + 1]), super::hex_digit(s[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the first delimiter (the preamble, ignored).
    Preamble,
    /// Reading a part's head.
    Head,
    /// Reading a part's data, looking for the next delimiter.
    Data,
    /// After the close delimiter (the epilogue, ignored).
    Done,
}

/// A `multipart/form-data` body parsed as it arrives.
///
/// Linear in the body whatever it holds: each feed scans its new bytes
/// once (a boundary that only starts a line of data does not restart
/// anything), hands the data it is sure of to the sink in one piece, and
/// moves what it keeps back once.
pub struct Multipart {
    /// `\r\n--boundary`: what ends a part's data.
    delimiter: Vec<u8>,
    phase: Phase,
    /// Bytes held back: a part head being read, or the tail of the data
    /// that could be the start of a delimiter.
    held: Vec<u8>,
    /// In a part head: where the first line not yet seen whole starts.
    head_scan: usize,
}

impl Multipart {
    pub fn new(boundary: &str) -> Multipart {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Multipart {
            delimiter,
            phase: Phase::Preamble,
            // The body's first delimiter has no CRLF before it: pretend it
            // had one.
            held: b"\r\n".to_vec(),
            head_scan: 0,
        }
    }

    /// The whole body has been seen: it must have ended with the close
    /// delimiter.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Parses more of the body.
    pub fn feed(&mut self, input: &[u8], sink: &mut impl PartSink) -> Result<(), FormError> {
        if self.phase == Phase::Done {
            return Ok(());
        }
        self.held.extend_from_slice(input);
        let mut used = 0;
        let result = self.step(&mut used, sink);
        self.held.drain(..used);
        if self.phase == Phase::Done {
            self.held = Vec::new();
        }
        result
    }

    /// Goes as far as `held` allows; `used` is how much of it is done with.
    fn step(&mut self, used: &mut usize, sink: &mut impl PartSink) -> Result<(), FormError> {
        let in_data = |phase| phase == Phase::Data;
        // Where to look for the next delimiter: past `used` when a
        // boundary there proved to be data.
        let mut search = *used;
        loop {
            match self.phase {
                Phase::Done => {
                    *used = self.held.len();
                    return Ok(());
                }
                Phase::Preamble | Phase::Data => {
                    let Some(found) = memchr::memmem::find(&self.held[search..], &self.delimiter)
                    else {
                        // All but what could be the start of a delimiter is
                        // data (or preamble).
                        let keep = self.held.len().saturating_sub(self.delimiter.len() - 1);
                        let keep = keep.max(*used);
                        if in_data(self.phase) && keep > *used {
                            sink.data(&self.held[*used..keep])?;
                        }
                        *used = keep;
                        return Ok(());
                    };
                    let at = search + found;
                    let after = at + self.delimiter.len();
                    match delimiter_line(&self.held[after..]) {
                        Line::Incomplete => {
                            if in_data(self.phase) && at > *used {
                                sink.data(&self.held[*used..at])?;
                            }
                            *used = at;
                            return Ok(());
                        }
                        // `--boundary` starting a line of data: data, as
                        // Python's `cgi` reads it.
                        Line::NotDelimiter => search = at + 1,
                        Line::Close => {
                            if in_data(self.phase) {
                                if at > *used {
                                    sink.data(&self.held[*used..at])?;
                                }
                                sink.part_end()?;
                            }
                            self.phase = Phase::Done;
                        }
                        Line::Part(len) => {
                            if in_data(self.phase) {
                                if at > *used {
                                    sink.data(&self.held[*used..at])?;
                                }
                                sink.part_end()?;
                            }
                            *used = after + len;
                            search = *used;
                            self.head_scan = 0;
                            self.phase = Phase::Head;
                        }
                    }
                }
                Phase::Head => {
                    let head = &self.held[*used..];
                    let Some((block, next)) = part_head_end(head, &mut self.head_scan) else {
                        if head.len() > MAX_PART_HEAD {
                            return Err(FormError::too_large("Multipart part head too large"));
                        }
                        return Ok(());
                    };
                    if block > MAX_PART_HEAD {
                        return Err(FormError::too_large("Multipart part head too large"));
                    }
                    sink.part(parse_part_head(&head[..block])?)?;
                    // The data starts here (an empty part's delimiter may
                    // follow at once).
                    *used += next;
                    search = *used;
                    self.phase = Phase::Data;
                }
            }
        }
    }
}

/// Where a part's head ends: the first empty line (`\r\n` or a bare
/// `\n`, as Python's `cgi` reads lines). Returns the length of the header
/// lines and where the data starts. `scan` remembers, between calls, where
/// the first line not yet seen whole starts.
fn part_head_end(buf: &[u8], scan: &mut usize) -> Option<(usize, usize)> {
    loop {
        let nl = *scan + memchr::memchr(b'\n', &buf[*scan..])?;
        let line = &buf[*scan..nl];
        if line.is_empty() || line == b"\r" {
            return Some((*scan, nl + 1));
        }
        *scan = nl + 1;
    }
}

/// What follows `\r\n--boundary`.
enum Line {
    /// Not enough bytes yet to tell.
    Incomplete,
    /// `--`: the close delimiter.
    Close,
    /// Padding then CRLF (or a bare LF): a part follows, after this many
    /// bytes.
    Part(usize),
    /// Anything else: the boundary was only the start of a line of data.
    NotDelimiter,
}

/// Longest transport padding (RFC 2046 5.1.1) accepted after a delimiter.
const MAX_PADDING: usize = 64;

fn delimiter_line(rest: &[u8]) -> Line {
    match rest {
        [] | [b'-'] => return Line::Incomplete,
        [b'-', b'-', ..] => return Line::Close,
        _ => {}
    }
    // At most MAX_PADDING spaces or tabs, then CRLF (or LF): the same
    // verdict at the same byte however the body is cut.
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b' ' | b'\t' if i < MAX_PADDING => {}
            b'\n' => return Line::Part(i + 1),
            b'\r' => {
                return match rest.get(i + 1) {
                    None => Line::Incomplete,
                    Some(b'\n') => Line::Part(i + 2),
                    Some(_) => Line::NotDelimiter,
                };
            }
            _ => return Line::NotDelimiter,
        }
    }
    Line::Incomplete
}

/// A part's header lines: `Content-Disposition` (required, `form-data`,
/// with a name) and `Content-Type`.
fn parse_part_head(block: &[u8]) -> Result<PartHead, FormError> {
    // Python decodes a part's head as UTF-8 with invalid bytes replaced.
    let text = String::from_utf8_lossy(block);
    let mut head = PartHead::default();
    let mut named = false;
    for line in text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
    {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FormError::bad("Bad multipart part head"));
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("Content-Disposition") {
            let (kind, params) = parse_header_params(value);
            if !kind.eq_ignore_ascii_case("form-data") {
                return Err(FormError::bad("Multipart part is not form-data"));
            }
            for (k, v) in params {
                match k.as_str() {
                    "name" => {
                        head.name = v;
                        named = true;
                    }
                    "filename" => head.filename = Some(v),
                    _ => {}
                }
            }
        } else if name.trim().eq_ignore_ascii_case("Content-Type") {
            head.content_type = Some(value.to_owned());
        }
    }
    if !named {
        return Err(FormError::bad("Multipart part without a name"));
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        parts: Vec<(PartHead, Vec<u8>)>,
        open: bool,
        data_calls: usize,
    }

    impl PartSink for Collect {
        fn part(&mut self, head: PartHead) -> Result<(), FormError> {
            assert!(!self.open);
            self.open = true;
            self.parts.push((head, Vec::new()));
            Ok(())
        }
        fn data(&mut self, piece: &[u8]) -> Result<(), FormError> {
            assert!(self.open);
            assert!(!piece.is_empty());
            self.data_calls += 1;
            self.parts.last_mut().unwrap().1.extend_from_slice(piece);
            Ok(())
        }
        fn part_end(&mut self) -> Result<(), FormError> {
            assert!(self.open);
            self.open = false;
            Ok(())
        }
    }

    const BODY: &[u8] =
        b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"foo\"\r\n\r\nbar\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"datafile\"; filename=\"a \\\"q\\\".py\"\r\n\
Content-Type: text/x-python\r\n\r\nline one\r\n--XyZnot a delimiter\r\n\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n--XyZ--\r\nepilogue";

    fn parse_in(pieces: usize) -> Collect {
        let mut m = Multipart::new("XyZ");
        let mut c = Collect::default();
        for chunk in BODY.chunks(pieces) {
            m.feed(chunk, &mut c).unwrap();
        }
        assert!(m.is_done(), "pieces of {pieces}");
        c
    }

    #[test]
    fn multipart_in_any_pieces() {
        let whole = parse_in(BODY.len());
        assert_eq!(whole.parts.len(), 3);
        assert_eq!(whole.parts[0].0.name, "foo");
        assert_eq!(whole.parts[0].1, b"bar");
        assert_eq!(whole.parts[1].0.filename.as_deref(), Some("a \"q\".py"));
        assert_eq!(
            whole.parts[1].0.content_type.as_deref(),
            Some("text/x-python")
        );
        assert_eq!(whole.parts[1].1, b"line one\r\n--XyZnot a delimiter\r\n");
        assert_eq!(whole.parts[2].1, b"");
        for n in 1..40 {
            let c = parse_in(n);
            let got: Vec<_> = c
                .parts
                .iter()
                .map(|(h, d)| (h.clone(), d.clone()))
                .collect();
            let want: Vec<_> = whole
                .parts
                .iter()
                .map(|(h, d)| (h.clone(), d.clone()))
                .collect();
            assert_eq!(got, want, "pieces of {n}");
        }
    }

    /// Data full of near-delimiters (`\r\n--BX` with boundary `B`) costs
    /// what plain data costs: one hand-over per feed, not one per
    /// near-miss.
    #[test]
    fn near_delimiters_are_data_in_whole_pieces() {
        let data: Vec<u8> = b"\r\n--BX".repeat(20_000);
        let mut body =
            b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\n\n".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--B--\r\n");
        let mut m = Multipart::new("B");
        let mut c = Collect::default();
        let pieces = body.chunks(4096).count();
        for piece in body.chunks(4096) {
            m.feed(piece, &mut c).unwrap();
        }
        assert!(m.is_done());
        assert_eq!(c.parts.len(), 1);
        assert_eq!(
            c.parts[0].0.filename.as_deref(),
            Some("x"),
            "bare-LF head lines, as Python"
        );
        assert_eq!(c.parts[0].1, data);
        assert!(
            c.data_calls <= pieces + 1,
            "{} hand-overs for {pieces} feeds",
            c.data_calls
        );
    }

    /// Found by the fuzzer: 65 spaces of padding then LF was a delimiter
    /// when it came whole and data when it came a byte at a time.
    #[test]
    fn padding_is_judged_at_the_same_byte_however_it_comes() {
        for spaces in [63, 64, 65, 66] {
            let mut body = b"--X".to_vec();
            body.extend(std::iter::repeat_n(b' ', spaces));
            body.extend_from_slice(
                b"\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--X--\r\n",
            );
            let verdict = |size: usize| {
                let mut m = Multipart::new("X");
                let mut c = Collect::default();
                let ok = body.chunks(size).all(|p| m.feed(p, &mut c).is_ok());
                (ok, m.is_done(), c.parts.len())
            };
            let whole = verdict(body.len());
            assert_eq!(whole, verdict(1), "{spaces} spaces");
            assert_eq!(whole.2 == 1, spaces <= MAX_PADDING, "{spaces} spaces");
        }
    }

    #[test]
    fn malformed_multipart_is_refused() {
        for bad in [
            &b"--X\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--X--"[..],
            b"--X\r\nContent-Type: text/plain\r\n\r\nv\r\n--X--",
            b"--X\r\nno colon\r\n\r\nv\r\n--X--",
        ] {
            let mut m = Multipart::new("X");
            let mut c = Collect::default();
            assert!(
                m.feed(bad, &mut c).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A boundary that only starts a line is not a delimiter; a body
        // without the close delimiter is not done.
        let mut m = Multipart::new("X");
        m.feed(b"--Xjunk\r\n", &mut Collect::default()).unwrap();
        assert!(!m.is_done());
        let mut long = b"--X\r\nContent-Disposition: form-data; name=\"".to_vec();
        long.resize(MAX_PART_HEAD + 100, b'a');
        let mut m = Multipart::new("X");
        assert_eq!(
            m.feed(&long, &mut Collect::default()).unwrap_err().status,
            413
        );
    }

    #[test]
    fn urlencoded_as_python() {
        assert_eq!(
            parse_urlencoded(b"a=1&b=x+y&c=%41%zz&d=&e", false),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "A%zz".into())
            ]
        );
        assert_eq!(parse_urlencoded(b"d=&e", true).len(), 2);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=----abc").as_deref(),
            Some("----abc")
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data; charset=x; boundary=\"q;r\"").as_deref(),
            Some("q;r")
        );
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
    }
}
