//! Multipart form bodies as they arrive: arbitrary bytes fed to
//! `proto::forms::Multipart` in pieces whose sizes come from the input,
//! compared with one feed of the whole: the same parts (heads and data),
//! the same verdict and the same end, whatever the cuts; and the bytes the
//! parser holds back never grow past a part head's bound.
//!
//! Input: `b: u8` (boundary length, & 15, at least 1), the boundary,
//! `n: u8` (how many cut sizes follow, & 15), `sizes[n]`, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::proto::forms::{FormError, MAX_PART_HEAD, Multipart, PartHead, PartSink};

#[derive(Default, PartialEq, Debug)]
struct Collect {
    parts: Vec<(PartHead, Vec<u8>, bool)>,
}

impl PartSink for Collect {
    fn part(&mut self, head: PartHead) -> Result<(), FormError> {
        if let Some(last) = self.parts.last() {
            assert!(last.2, "a part began before the last one ended");
        }
        self.parts.push((head, Vec::new(), false));
        Ok(())
    }
    fn data(&mut self, piece: &[u8]) -> Result<(), FormError> {
        assert!(!piece.is_empty());
        let last = self.parts.last_mut().expect("data before any part");
        assert!(!last.2, "data after the part ended");
        last.1.extend_from_slice(piece);
        Ok(())
    }
    fn part_end(&mut self) -> Result<(), FormError> {
        let last = self.parts.last_mut().expect("an end before any part");
        assert!(!last.2);
        last.2 = true;
        Ok(())
    }
}

fn feed(boundary: &str, body: &[u8], sizes: &[usize]) -> (Collect, Result<bool, FormError>) {
    let mut m = Multipart::new(boundary);
    let mut c = Collect::default();
    let mut pos = 0;
    let mut i = 0;
    while pos < body.len() {
        let size = if sizes.is_empty() { body.len() } else { sizes[i % sizes.len()] };
        i += 1;
        let end = (pos + size).min(body.len());
        if let Err(e) = m.feed(&body[pos..end], &mut c) {
            return (c, Err(e));
        }
        pos = end;
    }
    (c, Ok(m.is_done()))
}

fuzz_target!(|input: &[u8]| {
    let Some((&b, rest)) = input.split_first() else {
        return;
    };
    let blen = usize::from(b & 15).max(1);
    if rest.len() < blen {
        return;
    }
    let (boundary, rest) = rest.split_at(blen);
    let Ok(boundary) = std::str::from_utf8(boundary) else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let n = usize::from(n & 15).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s).max(1)).collect();
    let whole = feed(boundary, body, &[]);
    let cut = feed(boundary, body, &sizes);
    match (&whole.1, &cut.1) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "done differs");
            assert_eq!(whole.0, cut.0, "parts differ");
        }
        (Err(a), Err(b)) => assert_eq!(a.status, b.status),
        // An error may come later with small pieces only if the whole
        // failed too (never the other way): both must fail.
        _ => panic!("verdicts differ: whole {:?}, cut {:?}", whole.1, cut.1),
    }
    for (head, _, _) in &whole.0.parts {
        assert!(head.name.len() <= MAX_PART_HEAD * 3);
    }
});
