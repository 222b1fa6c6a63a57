//! The chunked transfer coding of request bodies (RFC 9112 section 7.1),
//! decoded incrementally from whatever bytes have arrived.
//!
//! Strict where leniency could let two parsers disagree on where a body
//! ends: chunk sizes are hex digits only (no sign, no `0x`, at most 16
//! digits), every line ends in CRLF, the CRLF after chunk data is required,
//! and extensions and trailer lines are bounded and checked for control
//! bytes. Trailer fields are read and dropped. Nothing here allocates.

/// Longest chunk-size line we accept, extensions included.
pub const MAX_SIZE_LINE: usize = 4096;
/// Most bytes of trailer section we accept (all lines together).
pub const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a chunk-size line; `digits` seen so far, `in_ext` after `;`
    /// (or whitespace), `cr` after a CR.
    Size {
        size: u64,
        digits: u8,
        in_ext: bool,
        cr: bool,
        len: usize,
    },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after chunk data (`cr`: the CR has been seen).
    DataEnd {
        cr: bool,
    },
    /// Trailer lines after the last chunk: `line` bytes into the current
    /// line, `cr` after a CR, `total` bytes of trailers so far, `colon`
    /// once the line's name has ended.
    Trailer {
        line: usize,
        cr: bool,
        total: usize,
        colon: bool,
    },
    Done,
}

/// Why a chunked body is malformed: the connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedError(pub &'static str);

/// An incremental decoder of one chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    phase: Phase,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

const NEW_SIZE: Phase = Phase::Size {
    size: 0,
    digits: 0,
    in_ext: false,
    cr: false,
    len: 0,
};

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder { phase: NEW_SIZE }
    }

    /// The whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Decodes from `input`, handing each piece of body data to `data`.
    /// Returns how many input bytes were used: all of them unless the body
    /// ended inside `input`, in which case the rest belongs to what follows.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkedError> {
        let mut pos = 0;
        while pos < input.len() {
            match &mut self.phase {
                Phase::Done => break,
                Phase::Data(left) => {
                    let take =
                        (input.len() - pos).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    data(&input[pos..pos + take]);
                    pos += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.phase = Phase::DataEnd { cr: false };
                    }
                }
                Phase::DataEnd { cr } => {
                    let b = input[pos];
                    pos += 1;
                    match (b, *cr) {
                        (b'\r', false) => *cr = true,
                        (b'\n', true) => self.phase = NEW_SIZE,
                        _ => return Err(ChunkedError("chunk data not followed by CRLF")),
                    }
                }
                Phase::Size {
                    size,
                    digits,
                    in_ext,
                    cr,
                    len,
                } => {
                    let b = input[pos];
                    pos += 1;
                    *len += 1;
                    if *len > MAX_SIZE_LINE {
                        return Err(ChunkedError("chunk-size line too long"));
                    }
                    if *cr {
                        if b != b'\n' {
                            return Err(ChunkedError("bare CR in chunk-size line"));
                        }
                        if *digits == 0 {
                            return Err(ChunkedError("chunk size missing"));
                        }
                        self.phase = if *size == 0 {
                            Phase::Trailer {
                                line: 0,
                                cr: false,
                                total: 0,
                                colon: false,
                            }
                        } else {
                            Phase::Data(*size)
                        };
                        continue;
                    }
                    match b {
                        b'\r' => *cr = true,
                        b'\n' => return Err(ChunkedError("chunk-size line ends without CR")),
                        _ if *in_ext => {
                            if b != b'\t' && (b < 0x20 || b == 0x7f) {
                                return Err(ChunkedError("control byte in chunk extension"));
                            }
                        }
                        b';' | b' ' | b'\t' if *digits > 0 => *in_ext = true,
                        _ => {
                            let Some(v) = super::hex_digit(b) else {
                                return Err(ChunkedError("bad chunk size"));
                            };
                            if *digits == 16 {
                                return Err(ChunkedError("chunk size too large"));
                            }
                            *size = (*size << 4) | u64::from(v);
                            *digits += 1;
                        }
                    }
                }
                Phase::Trailer {
                    line,
                    cr,
                    total,
                    colon,
                } => {
                    let b = input[pos];
                    pos += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err(ChunkedError("trailer section too long"));
                    }
                    if *cr {
                        if b != b'\n' {
                            return Err(ChunkedError("bare CR in trailer"));
                        }
                        if *line == 0 {
                            self.phase = Phase::Done;
                        } else if !*colon {
                            // Not `name: value`: a request read as trailers?
                            return Err(ChunkedError("trailer line is not a field"));
                        } else {
                            *line = 0;
                            *cr = false;
                            *colon = false;
                        }
                        continue;
                    }
                    match b {
                        b'\r' => *cr = true,
                        b'\n' => return Err(ChunkedError("trailer line ends without CR")),
                        // An obs-fold or a line that cannot be a field line.
                        b' ' | b'\t' if *line == 0 => {
                            return Err(ChunkedError("folded trailer line"));
                        }
                        _ if b != b'\t' && (b < 0x20 || b == 0x7f) => {
                            return Err(ChunkedError("control byte in trailer"));
                        }
                        b':' if !*colon => {
                            if *line == 0 {
                                return Err(ChunkedError("trailer field without a name"));
                            }
                            *colon = true;
                            *line += 1;
                        }
                        // A field name is a token: no space before the colon.
                        _ if !*colon && !super::request::is_tchar(b) => {
                            return Err(ChunkedError("bad trailer field name"));
                        }
                        _ => *line += 1,
                    }
                }
            }
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        let used = d.decode(input, |b| body.extend_from_slice(b))?;
        Ok((body, used, d.is_done()))
    }

    #[test]
    fn decodes_and_stops_at_the_end() {
        let input = b"5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /";
        let (body, used, done) = decode_all(input).unwrap();
        assert_eq!(body, b"hello world");
        assert!(done);
        assert_eq!(&input[used..], b"GET /");
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let input = b"A\r\n0123456789\r\n1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        for b in input.chunks(1) {
            assert_eq!(d.decode(b, |x| body.extend_from_slice(x)).unwrap(), 1);
        }
        assert!(d.is_done());
        assert_eq!(body.len(), 41);
    }

    #[test]
    fn refuses_what_could_desync() {
        for bad in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"\r\n",
            b"5\rx",
            b"0\r\n X: y\r\n\r\n",
            b"0\r\nX: a\rb\r\n\r\n",
            b"5;\x00\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounded_lines() {
        let mut long = b"5;".to_vec();
        long.resize(MAX_SIZE_LINE + 1, b'a');
        assert!(decode_all(&long).is_err());
        for bad in [
            &b"0\r\nX T\r\n\r\n"[..],
            b"0\r\nX : a\r\n\r\n",
            b"0\r\n: a\r\n\r\n",
            b"0\r\nGET /nonexist HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode_all(b"0\r\nX-T: a b:c\r\nY:\r\n\r\n").is_ok());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 10 {
            trailers.extend_from_slice(b"X-Trailer: value\r\n");
        }
        assert!(decode_all(&trailers).is_err());
    }

    #[test]
    fn largest_size_is_accepted() {
        let (_, used, done) = decode_all(b"ffffffffffffffff\r\nab").unwrap();
        assert_eq!((used, done), (20, false));
    }
}
