//! Byte range requests (RFC 9110 section 14): the `Range` header field, the
//! `Content-Range` value, and the framing of `multipart/byteranges` bodies.
//!
//! Nothing here touches a socket or a file, nothing allocates except by
//! appending to the caller's output buffer, and nothing panics on any input.
//!
//! # Choices
//!
//! - Only the `bytes` unit (compared case-insensitively, section 14.1) is
//!   understood; any other unit, and any range set that is syntactically
//!   invalid, is ignored and the whole representation is served
//!   ([`RangeSpec::Whole`], a 200). Section 14.2 lets a server ignore a
//!   `Range` header field, and an invalid one must be.
//! - Invalid means: no `=`, an empty range set (`bytes=`, `bytes=,`), a
//!   range-spec that is not `first-last`, `first-` or `-suffix` of decimal
//!   digits (`bytes=-`, `bytes=1-2-3`, `bytes=+1-`), or a reversed range
//!   (`bytes=5-3`, section 14.1.1). One invalid range-spec makes the whole
//!   header invalid.
//! - Whitespace (SP, HTAB) is accepted around the whole value, after the `=`
//!   and around commas, but not inside a range-spec (`bytes=1 - 2` is
//!   invalid). Empty list elements (`bytes=0-1,,2-3`) are skipped, as
//!   section 5.6.1 asks of recipients, however many there are.
//! - Numbers never overflow: digits saturate at `u64::MAX`. A first-pos too
//!   large for a `u64` is therefore past the end of any representation, so
//!   `bytes=99999999999999999999999-` is *unsatisfiable* (416), not
//!   invalid; a huge last-pos is clamped to the last byte and a huge suffix
//!   means the whole representation. Reversal is decided on the exact
//!   decimal values, so `bytes=100000000000000000001-100000000000000000000`
//!   is still invalid.
//! - A range-spec is satisfiable (section 14.1.1) when its first-pos is
//!   below the length or it is a suffix with a non-zero length; the others
//!   are dropped. If none is left the answer is [`RangeSpec::Unsatisfiable`]
//!   (416 with `Content-Range: bytes */len`, see [`write_unsatisfied`]).
//! - An empty representation has no byte to send in a 206, so on a
//!   zero-length file `bytes=-5` (satisfiable per the RFC: "the entire
//!   representation is used") is served as [`RangeSpec::Whole`], while
//!   `bytes=0-` and `bytes=-0` are unsatisfiable, as the RFC says.
//! - Denial of service (section 14.2 lets a server ignore such headers):
//!   a header with more than [`MAX_RANGES`] (16) range-specs, or whose
//!   satisfiable ranges add up to more bytes than the representation has
//!   (`bytes=0-,0-,0-`: overlapping ranges), is ignored and the whole
//!   representation is served with a 200. Counting stops at the 17th
//!   range-spec, so a huge header costs one linear scan at most.
//! - The ranges kept are sorted in ascending order and overlapping or
//!   adjacent ones are coalesced (section 15.3.7.2 allows coalescing; the
//!   ascending order departs from its "SHOULD send the parts in the same
//!   order" as requested, for simplicity). If one range is left the answer is
//!   [`RangeSpec::Single`] (a plain 206), else [`RangeSpec::Multi`] (a
//!   `multipart/byteranges` 206).
//! - The caller decides whether `Range` applies at all: only to GET (section
//!   14.2), only after the preconditions of `crate::proto::conditional`, and only
//!   if `If-Range`, when present, allows it.

use crate::proto::request::trim_ows;
use crate::proto::response::push_decimal;
use std::cmp::Ordering;

/// The most range-specs a `Range` header may hold before it is ignored.
pub const MAX_RANGES: usize = 16;

/// Length of the boundaries made by [`boundary`].
pub const BOUNDARY_LEN: usize = 20;

/// A satisfiable byte range, both ends inclusive, within a representation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end_inclusive: u64,
}

impl ByteRange {
    /// The number of bytes in the range (0 if `end_inclusive < start`,
    /// which [`parse`] never produces).
    pub fn len(&self) -> u64 {
        if self.end_inclusive < self.start {
            0
        } else {
            (self.end_inclusive - self.start).saturating_add(1)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Between 2 and [`MAX_RANGES`] ranges in ascending order, none overlapping
/// or adjacent to another, held without touching the heap.
#[derive(Clone, Copy)]
pub struct RangeSet {
    ranges: [ByteRange; MAX_RANGES],
    count: usize,
}

impl RangeSet {
    const fn new() -> RangeSet {
        RangeSet {
            ranges: [ByteRange {
                start: 0,
                end_inclusive: 0,
            }; MAX_RANGES],
            count: 0,
        }
    }

    pub fn as_slice(&self) -> &[ByteRange] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// Appends a range; returns false when full.
    fn push(&mut self, range: ByteRange) -> bool {
        match self.ranges.get_mut(self.count) {
            Some(slot) => {
                *slot = range;
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// Sorts the ranges and merges those that overlap or touch.
    fn coalesce(&mut self) {
        let count = self.count.min(MAX_RANGES);
        let Some(ranges) = self.ranges.get_mut(..count) else {
            return;
        };
        ranges.sort_unstable_by_key(|r| (r.start, r.end_inclusive));
        let mut kept = 0;
        for i in 0..ranges.len() {
            let next = ranges[i];
            if kept > 0 {
                let last = &mut ranges[kept - 1];
                if next.start <= last.end_inclusive.saturating_add(1) {
                    last.end_inclusive = last.end_inclusive.max(next.end_inclusive);
                    continue;
                }
            }
            ranges[kept] = next;
            kept += 1;
        }
        self.count = kept;
    }
}

impl PartialEq for RangeSet {
    fn eq(&self, other: &RangeSet) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for RangeSet {}

impl std::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// What to do about a `Range` header field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// The set stays on the stack for one request; boxing it would allocate.
#[allow(clippy::large_enum_variant)]
pub enum RangeSpec {
    /// Ignore the header and serve the whole representation (200): it was
    /// absent, not in bytes, invalid, or asked for too much (see the module
    /// documentation).
    Whole,
    /// One range (206 with `Content-Range`).
    Single { start: u64, end_inclusive: u64 },
    /// Several disjoint ranges in ascending order (206
    /// `multipart/byteranges`).
    Multi(RangeSet),
    /// No range overlaps the representation (416 with
    /// `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// One syntactically valid range-spec, before it meets the length.
enum Spec {
    /// `first-` or `first-last`.
    Int { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

/// Decides what a `Range` field value asks of a representation of `len`
/// bytes. See the module documentation for the choices made.
pub fn parse(header: &[u8], len: u64) -> RangeSpec {
    let value = trim_ows(header);
    let Some(eq) = memchr::memchr(b'=', value) else {
        return RangeSpec::Whole;
    };
    let (unit, set) = value.split_at(eq);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return RangeSpec::Whole;
    }
    let set = set.get(1..).unwrap_or(&[]);

    let mut kept = RangeSet::new();
    let mut specs = 0usize;
    let mut total: u64 = 0;
    // A non-zero suffix on an empty representation: satisfiable, but there
    // is no byte to put in a 206.
    let mut empty_but_satisfiable = false;
    for element in set.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        specs += 1;
        if specs > MAX_RANGES {
            return RangeSpec::Whole;
        }
        let Some(spec) = parse_spec(element) else {
            return RangeSpec::Whole;
        };
        let range = match spec {
            Spec::Int { first, last } => {
                if first >= len {
                    continue;
                }
                let last = last.unwrap_or(u64::MAX).min(len - 1);
                ByteRange {
                    start: first,
                    end_inclusive: last,
                }
            }
            Spec::Suffix(0) => continue,
            Spec::Suffix(n) => {
                if len == 0 {
                    empty_but_satisfiable = true;
                    continue;
                }
                ByteRange {
                    start: len - n.min(len),
                    end_inclusive: len - 1,
                }
            }
        };
        // Overlapping ranges adding up to more than the representation.
        match total.checked_add(range.len()) {
            Some(sum) if sum <= len => total = sum,
            _ => return RangeSpec::Whole,
        }
        // Cannot fail: at most MAX_RANGES specs reach this point.
        if !kept.push(range) {
            return RangeSpec::Whole;
        }
    }

    if specs == 0 || empty_but_satisfiable {
        return RangeSpec::Whole;
    }
    kept.coalesce();
    match kept.as_slice() {
        [] => RangeSpec::Unsatisfiable,
        [one] => RangeSpec::Single {
            start: one.start,
            end_inclusive: one.end_inclusive,
        },
        _ => RangeSpec::Multi(kept),
    }
}

/// Parses one non-empty, trimmed range-spec; `None` if it is invalid.
fn parse_spec(element: &[u8]) -> Option<Spec> {
    let dash = memchr::memchr(b'-', element)?;
    let (first, last) = element.split_at(dash);
    let last = last.get(1..)?;
    if first.is_empty() {
        return Some(Spec::Suffix(parse_digits(last)?));
    }
    let first_value = parse_digits(first)?;
    if last.is_empty() {
        return Some(Spec::Int {
            first: first_value,
            last: None,
        });
    }
    let last_value = parse_digits(last)?;
    if cmp_decimal(last, first) == Ordering::Less {
        return None;
    }
    Some(Spec::Int {
        first: first_value,
        last: Some(last_value),
    })
}

/// 1*DIGIT, saturating at `u64::MAX`.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(value)
}

/// Compares two strings of ASCII digits by their exact values.
fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    digits.get(zeros..).unwrap_or(&[])
}

/// The number of decimal digits of `n`.
fn decimal_len(mut n: u64) -> u64 {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Appends the `Content-Range` value of a 206: `bytes a-b/len`.
pub fn write_content_range(out: &mut Vec<u8>, start: u64, end_inclusive: u64, len: u64) {
    out.extend_from_slice(b"bytes ");
    push_decimal(out, start);
    out.push(b'-');
    push_decimal(out, end_inclusive);
    out.push(b'/');
    push_decimal(out, len);
}

/// Appends the `Content-Range` value of a 416: `bytes */len`.
pub fn write_unsatisfied(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"bytes */");
    push_decimal(out, len);
}

/// A `multipart/byteranges` boundary of [`BOUNDARY_LEN`] lowercase hex
/// digits, scrambled from `seed` (say, a hash of the ETag mixed with a
/// request counter). Hex digits are valid boundary characters (RFC 2046).
/// A file could in principle contain the boundary; each part still carries
/// its own `Content-Range`, and the file's bytes are no secret from the
/// client that asked for them.
pub fn boundary(seed: u64) -> [u8; BOUNDARY_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let high = splitmix64(seed);
    let low = splitmix64(seed ^ 0xa076_1d64_78bd_642f);
    let mut out = [0u8; BOUNDARY_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        let nibble = if i < 16 {
            (high >> (60 - 4 * i)) & 0xf
        } else {
            (low >> (60 - 4 * (i - 16))) & 0xf
        };
        *slot = HEX[nibble as usize];
    }
    out
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A boundary no one can guess: a keyed hash (SipHash, with keys std draws
/// from the system's random source once) of a per-process counter, so a
/// file's author cannot plant it in the file (RFC 2046 5.1.1).
pub fn random_boundary() -> [u8; BOUNDARY_LEN] {
    use std::cell::Cell;
    use std::hash::BuildHasher;
    thread_local! {
        static KEYS: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new();
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNT.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    });
    boundary(KEYS.with(|k| k.hash_one(n)))
}

/// Appends the `Content-Type` value of a multipart 206:
/// `multipart/byteranges; boundary=B`.
pub fn write_multipart_content_type(out: &mut Vec<u8>, boundary: &[u8]) {
    out.extend_from_slice(b"multipart/byteranges; boundary=");
    out.extend_from_slice(boundary);
}

/// Appends what precedes one part of a `multipart/byteranges` body:
/// `\r\n--B\r\nContent-Type: T\r\nContent-Range: bytes a-b/len\r\n\r\n`.
/// The `Content-Type` line is left out when `content_type` is empty.
pub fn part_header(
    out: &mut Vec<u8>,
    boundary: &[u8],
    content_type: &str,
    start: u64,
    end_inclusive: u64,
    len: u64,
) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary);
    out.extend_from_slice(b"\r\n");
    if !content_type.is_empty() {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Range: ");
    write_content_range(out, start, end_inclusive, len);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends the end of a `multipart/byteranges` body: `\r\n--B--\r\n`.
pub fn closing(out: &mut Vec<u8>, boundary: &[u8]) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary);
    out.extend_from_slice(b"--\r\n");
}

/// The exact length of the `multipart/byteranges` body made of a
/// [`part_header`] and the bytes of each range, then [`closing`], for a
/// representation of `len` bytes: the `Content-Length` to send.
/// Saturates rather than overflows.
pub fn multipart_length(
    ranges: &[ByteRange],
    boundary_len: usize,
    content_type: &str,
    len: u64,
) -> u64 {
    let boundary_len = boundary_len as u64;
    // "\r\n--" B "\r\n"
    let delimiter = 4u64.saturating_add(boundary_len).saturating_add(2);
    let type_line = if content_type.is_empty() {
        0
    } else {
        // "Content-Type: " T "\r\n"
        (14u64 + 2).saturating_add(content_type.len() as u64)
    };
    // "Content-Range: bytes " a "-" b "/" len "\r\n" "\r\n"
    let range_line_fixed = 21 + 1 + 1 + 2 + 2 + decimal_len(len);
    let mut total: u64 = 0;
    for r in ranges {
        let head = delimiter
            .saturating_add(type_line)
            .saturating_add(range_line_fixed)
            .saturating_add(decimal_len(r.start))
            .saturating_add(decimal_len(r.end_inclusive));
        total = total.saturating_add(head).saturating_add(r.len());
    }
    // "\r\n--" B "--\r\n"
    total.saturating_add(delimiter).saturating_add(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(start: u64, end_inclusive: u64) -> RangeSpec {
        RangeSpec::Single {
            start,
            end_inclusive,
        }
    }

    fn multi(ranges: &[(u64, u64)]) -> RangeSpec {
        let mut set = RangeSet::new();
        for &(start, end_inclusive) in ranges {
            assert!(set.push(ByteRange {
                start,
                end_inclusive
            }));
        }
        RangeSpec::Multi(set)
    }

    fn p(header: &str, len: u64) -> RangeSpec {
        parse(header.as_bytes(), len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(p("bytes=0-0", 10), single(0, 0));
        assert_eq!(p("bytes=0-9", 10), single(0, 9));
        assert_eq!(p("bytes=2-5", 10), single(2, 5));
        assert_eq!(p("bytes=9-9", 10), single(9, 9));
        assert_eq!(p("bytes=3-", 10), single(3, 9));
        assert_eq!(p("bytes=0-", 10), single(0, 9));
        assert_eq!(p("bytes=-3", 10), single(7, 9));
        assert_eq!(p("bytes=-10", 10), single(0, 9));
        assert_eq!(p("bytes=-1", 1), single(0, 0));
        assert_eq!(p("bytes=0-0", 1), single(0, 0));
        assert_eq!(p("bytes=007-008", 10), single(7, 8));
    }

    #[test]
    fn last_pos_and_suffix_are_clamped() {
        assert_eq!(p("bytes=5-100", 10), single(5, 9));
        assert_eq!(p("bytes=0-18446744073709551615", 10), single(0, 9));
        assert_eq!(p("bytes=-11", 10), single(0, 9));
        assert_eq!(p("bytes=-18446744073709551615", 10), single(0, 9));
        assert_eq!(p("bytes=-99999999999999999999999", 10), single(0, 9));
    }

    #[test]
    fn unit_is_case_insensitive_and_whitespace_is_tolerated() {
        assert_eq!(p("Bytes=1-2", 10), single(1, 2));
        assert_eq!(p("BYTES=1-2", 10), single(1, 2));
        assert_eq!(p("  bytes=1-2\t ", 10), single(1, 2));
        assert_eq!(p("bytes= 1-2", 10), single(1, 2));
        assert_eq!(p("bytes=1-2 , 4-5", 10), multi(&[(1, 2), (4, 5)]));
        assert_eq!(p("bytes=1-2\t,\t4-5", 10), multi(&[(1, 2), (4, 5)]));
        assert_eq!(p("bytes=1-2,,, ,4-5,", 10), multi(&[(1, 2), (4, 5)]));
        assert_eq!(p("bytes=,1-2", 10), single(1, 2));
    }

    #[test]
    fn other_units_and_garbage_are_ignored() {
        for header in [
            "",
            " ",
            "bytes",
            "bytes 0-1",
            "items=0-1",
            "bytesx=0-1",
            "xbytes=0-1",
            "bytes =0-1",
            "=0-1",
            "bytes=",
            "bytes=,",
            "bytes= , ,",
            "bytes=-",
            "bytes=--1",
            "bytes=1--2",
            "bytes=1-2-3",
            "bytes=1",
            "bytes=a-b",
            "bytes=1-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+2",
            "bytes=0x1-2",
            "bytes=1 -2",
            "bytes=1- 2",
            "bytes=1.5-2",
            "bytes=1-2;3-4",
            "bytes=1-2,x",
            "bytes=x,1-2",
            "bytes=1-2,3-4,-",
            "bytes==1-2",
            "bytes=\u{661}-2",
            "garbage",
        ] {
            assert_eq!(p(header, 10), RangeSpec::Whole, "{header:?}");
        }
        assert_eq!(parse(b"bytes=\xff-\x00", 10), RangeSpec::Whole);
        assert_eq!(parse(b"\xff\xfe=0-1", 10), RangeSpec::Whole);
    }

    #[test]
    fn reversed_ranges_make_the_header_invalid() {
        assert_eq!(p("bytes=5-3", 10), RangeSpec::Whole);
        assert_eq!(p("bytes=1-0", 10), RangeSpec::Whole);
        assert_eq!(p("bytes=0-1,5-3", 10), RangeSpec::Whole);
        // Even when it is past the end, and even beyond u64.
        assert_eq!(p("bytes=50-40", 10), RangeSpec::Whole);
        assert_eq!(
            p("bytes=100000000000000000001-100000000000000000000", 10),
            RangeSpec::Whole
        );
        assert_eq!(
            p("bytes=100000000000000000000-18446744073709551615", 10),
            RangeSpec::Whole
        );
        // Leading zeros do not make a number bigger.
        assert_eq!(p("bytes=0003-00000000000000000000004", 10), single(3, 4));
        assert_eq!(p("bytes=0000000000000000000000005-4", 10), RangeSpec::Whole);
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(p("bytes=10-", 10), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=10-20", 10), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=11-", 10), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=-0", 10), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=-000", 10), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=10-,-0,20-30", 10), RangeSpec::Unsatisfiable);
        assert_eq!(
            p("bytes=18446744073709551615-", 10),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(
            p("bytes=18446744073709551615-", u64::MAX),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(
            p("bytes=99999999999999999999999-", 10),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(
            p("bytes=99999999999999999999999-", u64::MAX),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(
            p("bytes=99999999999999999999999-99999999999999999999999", 10),
            RangeSpec::Unsatisfiable
        );
    }

    #[test]
    fn unsatisfiable_ranges_are_dropped_from_a_set() {
        assert_eq!(p("bytes=20-30,2-3", 10), single(2, 3));
        assert_eq!(p("bytes=-0,2-3", 10), single(2, 3));
        assert_eq!(p("bytes=2-3,10-,-0,5-6", 10), multi(&[(2, 3), (5, 6)]));
    }

    #[test]
    fn empty_representation() {
        assert_eq!(p("bytes=0-", 0), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=0-0", 0), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=-0", 0), RangeSpec::Unsatisfiable);
        assert_eq!(p("bytes=-1", 0), RangeSpec::Whole);
        assert_eq!(p("bytes=0-5,-1", 0), RangeSpec::Whole);
        assert_eq!(p("bytes=5-3", 0), RangeSpec::Whole);
        assert_eq!(p("bytes=", 0), RangeSpec::Whole);
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let max = u64::MAX;
        assert_eq!(p("bytes=0-", max), single(0, max - 1));
        assert_eq!(p("bytes=-1", max), single(max - 1, max - 1));
        assert_eq!(p("bytes=-99999999999999999999999", max), single(0, max - 1));
        assert_eq!(
            p("bytes=18446744073709551614-", max),
            single(max - 1, max - 1)
        );
        assert_eq!(
            p("bytes=0-0,18446744073709551613-", max),
            multi(&[(0, 0), (max - 2, max - 1)])
        );
        // Two halves sum to the whole: not more than the length.
        assert_eq!(
            p("bytes=0-9223372036854775806,9223372036854775808-", max),
            multi(&[(0, 9223372036854775806), (9223372036854775808, max - 1)])
        );
        // Overlapping ranges of an enormous file: the total overflows.
        assert_eq!(p("bytes=0-,0-", max), RangeSpec::Whole);
    }

    #[test]
    fn multiple_ranges_are_sorted_and_coalesced() {
        assert_eq!(p("bytes=0-1,4-5", 10), multi(&[(0, 1), (4, 5)]));
        assert_eq!(p("bytes=4-5,0-1", 10), multi(&[(0, 1), (4, 5)]));
        assert_eq!(p("bytes=-2,0-1", 10), multi(&[(0, 1), (8, 9)]));
        assert_eq!(p("bytes=0-1,2-3", 10), single(0, 3));
        assert_eq!(p("bytes=2-3,0-1", 10), single(0, 3));
        assert_eq!(p("bytes=0-2,2-3", 10), single(0, 3));
        assert_eq!(p("bytes=0-4,5-", 10), single(0, 9));
        assert_eq!(p("bytes=0-1,3-4,2-2", 10), single(0, 4));
        assert_eq!(
            p("bytes=8-8,0-0,4-4,2-2", 10),
            multi(&[(0, 0), (2, 2), (4, 4), (8, 8)])
        );
        assert_eq!(p("bytes=1-3,2-2,7-", 10), multi(&[(1, 3), (7, 9)]));
        assert_eq!(p("bytes=2-2,1-3", 10), single(1, 3));
        assert_eq!(p("bytes=1-2,1-2", 10), single(1, 2));
        assert_eq!(p("bytes=5-,-5", 10), single(5, 9));
        assert_eq!(p("bytes=0-0,-1", 2), single(0, 1));
    }

    #[test]
    fn ranges_adding_up_to_more_than_the_length_are_ignored() {
        assert_eq!(p("bytes=0-,0-", 10), RangeSpec::Whole);
        assert_eq!(p("bytes=0-5,3-9", 10), RangeSpec::Whole);
        assert_eq!(p("bytes=-6,0-5", 10), RangeSpec::Whole);
        // Exactly the length is fine.
        assert_eq!(p("bytes=0-4,5-9", 10), single(0, 9));
        assert_eq!(p("bytes=0-4,3-7", 10), single(0, 7));
        // Clamped sizes are what count.
        assert_eq!(p("bytes=0-1,8-1000", 10), multi(&[(0, 1), (8, 9)]));
    }

    #[test]
    fn at_most_sixteen_ranges() {
        let mut header = String::from("bytes=");
        for i in 0..16 {
            header.push_str(&format!("{}-{},", i * 2, i * 2));
        }
        let RangeSpec::Multi(set) = p(&header, 100) else {
            panic!("expected Multi");
        };
        assert_eq!(set.as_slice().len(), 16);
        assert_eq!(
            set.as_slice()[15],
            ByteRange {
                start: 30,
                end_inclusive: 30
            }
        );
        header.push_str("40-40");
        assert_eq!(p(&header, 100), RangeSpec::Whole);
        // Seventeen that would coalesce into one are still too many.
        let header = format!("bytes={}", vec!["0-0"; 17].join(","));
        assert_eq!(p(&header, 100), RangeSpec::Whole);
        // Unsatisfiable ones count too.
        let header = format!("bytes=0-0,{}", vec!["500-"; 16].join(","));
        assert_eq!(p(&header, 100), RangeSpec::Whole);
        let header = format!("bytes=0-0,{}", vec!["500-"; 15].join(","));
        assert_eq!(p(&header, 100), single(0, 0));
        // Sixteen unsatisfiable ones.
        let header = format!("bytes={}", vec!["500-"; 16].join(","));
        assert_eq!(p(&header, 100), RangeSpec::Unsatisfiable);
    }

    #[test]
    fn many_commas_and_huge_headers() {
        let commas = ",".repeat(1000);
        assert_eq!(p(&format!("bytes={commas}"), 10), RangeSpec::Whole);
        assert_eq!(p(&format!("bytes={commas}1-2{commas}"), 10), single(1, 2));
        assert_eq!(
            p(&format!("bytes=1-2{commas}4-5{commas}"), 10),
            multi(&[(1, 2), (4, 5)])
        );

        let mb = 1 << 20;
        let digits = "9".repeat(mb);
        assert_eq!(p(&format!("bytes={digits}-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(p(&format!("bytes=0-{digits}"), 10), single(0, 9));
        assert_eq!(p(&format!("bytes=-{digits}"), 10), single(0, 9));
        assert_eq!(p(&format!("bytes={digits}-1"), 10), RangeSpec::Whole);
        assert_eq!(
            p(&format!("bytes={digits}-{digits}"), 10),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(
            p(&format!("bytes={}", "x".repeat(mb)), 10),
            RangeSpec::Whole
        );
        assert_eq!(
            p(&format!("bytes={}", " ".repeat(mb)), 10),
            RangeSpec::Whole
        );
        assert_eq!(p(&"-".repeat(mb), 10), RangeSpec::Whole);
        assert_eq!(p(&"=".repeat(mb), 10), RangeSpec::Whole);
        assert_eq!(
            p(&format!("bytes={}", "0-0,".repeat(mb / 4)), 10),
            RangeSpec::Whole
        );
        assert_eq!(
            p(&format!("bytes=1-2,{}", " ,".repeat(mb / 2)), 10),
            single(1, 2)
        );
    }

    #[test]
    fn every_byte_as_a_header_never_panics() {
        for len in [0, 1, 2, 10, u64::MAX] {
            for a in 0..=255u8 {
                for b in [b'0', b'-', b',', b' ', a] {
                    let header = [b'b', b'y', b't', b'e', b's', b'=', a, b, b'-', a];
                    let _ = parse(&header, len);
                    let _ = parse(&header[6..], len);
                    let _ = parse(&[a, b], len);
                }
            }
        }
    }

    #[test]
    fn byte_range_len() {
        let r = ByteRange {
            start: 3,
            end_inclusive: 5,
        };
        assert_eq!(r.len(), 3);
        assert!(!r.is_empty());
        let whole = ByteRange {
            start: 0,
            end_inclusive: u64::MAX,
        };
        assert_eq!(whole.len(), u64::MAX);
        let backwards = ByteRange {
            start: 5,
            end_inclusive: 3,
        };
        assert_eq!(backwards.len(), 0);
        assert!(backwards.is_empty());
    }

    #[test]
    fn range_set_push_stops_when_full() {
        let mut set = RangeSet::new();
        for i in 0..MAX_RANGES as u64 {
            assert!(set.push(ByteRange {
                start: i,
                end_inclusive: i
            }));
        }
        assert!(!set.push(ByteRange::default()));
        assert_eq!(set.as_slice().len(), MAX_RANGES);
        set.coalesce();
        assert_eq!(
            set.as_slice(),
            &[ByteRange {
                start: 0,
                end_inclusive: 15
            }]
        );
        assert_eq!(
            format!("{set:?}"),
            "[ByteRange { start: 0, end_inclusive: 15 }]"
        );
    }

    #[test]
    fn range_set_equality_ignores_unused_slots() {
        let mut a = RangeSet::new();
        let mut b = RangeSet::new();
        for set in [&mut a, &mut b] {
            set.push(ByteRange {
                start: 0,
                end_inclusive: 1,
            });
            set.push(ByteRange {
                start: 5,
                end_inclusive: 6,
            });
        }
        a.push(ByteRange {
            start: 2,
            end_inclusive: 3,
        });
        a.coalesce();
        b.coalesce();
        assert_eq!(
            a.as_slice(),
            &[
                ByteRange {
                    start: 0,
                    end_inclusive: 3
                },
                ByteRange {
                    start: 5,
                    end_inclusive: 6
                }
            ]
        );
        b.ranges[0].end_inclusive = 3;
        assert_eq!(a, b);
    }

    #[test]
    fn content_range_values() {
        let mut out = Vec::new();
        write_content_range(&mut out, 0, 0, 1);
        assert_eq!(out, b"bytes 0-0/1");
        out.clear();
        write_content_range(&mut out, 100, 199, 1000);
        assert_eq!(out, b"bytes 100-199/1000");
        out.clear();
        write_content_range(&mut out, u64::MAX - 1, u64::MAX - 1, u64::MAX);
        assert_eq!(
            out,
            b"bytes 18446744073709551614-18446744073709551614/18446744073709551615"
        );
        out.clear();
        write_unsatisfied(&mut out, 0);
        assert_eq!(out, b"bytes */0");
        out.clear();
        write_unsatisfied(&mut out, 12345);
        assert_eq!(out, b"bytes */12345");
    }

    #[test]
    fn decimal_helpers() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12345,
            999_999_999_999,
            u64::MAX / 10,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            assert_eq!(decimal_len(n), n.to_string().len() as u64);
        }
        assert_eq!(cmp_decimal(b"0", b"00"), Ordering::Equal);
        assert_eq!(cmp_decimal(b"10", b"9"), Ordering::Greater);
        assert_eq!(cmp_decimal(b"0009", b"10"), Ordering::Less);
        assert_eq!(cmp_decimal(b"123", b"124"), Ordering::Less);
        assert_eq!(parse_digits(b""), None);
        assert_eq!(parse_digits(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_digits(b"18446744073709551616"), Some(u64::MAX));
        assert_eq!(parse_digits(b"12a"), None);
    }

    #[test]
    fn boundaries() {
        let a = boundary(0);
        let b = boundary(1);
        assert_eq!(a.len(), BOUNDARY_LEN);
        assert_ne!(a, b);
        assert_eq!(boundary(1), b);
        for seed in [0, 1, 42, u64::MAX] {
            assert!(
                boundary(seed)
                    .iter()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            );
        }
    }

    #[test]
    fn multipart_framing() {
        let mut out = Vec::new();
        part_header(&mut out, b"XYZ", "text/plain", 0, 4, 10);
        assert_eq!(
            out,
            b"\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/10\r\n\r\n"
        );
        out.clear();
        part_header(&mut out, b"XYZ", "", 5, 9, 10);
        assert_eq!(out, b"\r\n--XYZ\r\nContent-Range: bytes 5-9/10\r\n\r\n");
        out.clear();
        closing(&mut out, b"XYZ");
        assert_eq!(out, b"\r\n--XYZ--\r\n");
        out.clear();
        write_multipart_content_type(&mut out, b"XYZ");
        assert_eq!(out, b"multipart/byteranges; boundary=XYZ");
    }

    /// Builds the body the way a server would, with `file` standing in for
    /// the bytes `sendfile` would send.
    fn build_body(
        ranges: &[ByteRange],
        boundary: &[u8],
        content_type: &str,
        file: &[u8],
    ) -> Vec<u8> {
        let len = file.len() as u64;
        let mut body = Vec::new();
        for r in ranges {
            part_header(
                &mut body,
                boundary,
                content_type,
                r.start,
                r.end_inclusive,
                len,
            );
            body.extend_from_slice(&file[r.start as usize..=r.end_inclusive as usize]);
        }
        closing(&mut body, boundary);
        body
    }

    #[test]
    fn multipart_length_matches_the_bytes_written() {
        let file: Vec<u8> = (0..12345u32).map(|i| (i * 7 % 251) as u8).collect();
        let len = file.len() as u64;
        let b = boundary(0x1234_5678);
        for header in [
            "bytes=0-0,2-2",
            "bytes=0-9,100-199,1000-",
            "bytes=-5,0-4",
            "bytes=1-1,10-10,100-100,1000-1000,10000-10000",
            "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30",
            "bytes=9999-12344,0-8",
        ] {
            let RangeSpec::Multi(set) = parse(header.as_bytes(), len) else {
                panic!("{header}: expected Multi");
            };
            for content_type in ["", "text/plain", "application/octet-stream; charset=utf-8"] {
                for boundary in [&b[..], b"x", b"a_much_longer_boundary_string_0123456789"] {
                    let body = build_body(set.as_slice(), boundary, content_type, &file);
                    assert_eq!(
                        multipart_length(set.as_slice(), boundary.len(), content_type, len),
                        body.len() as u64,
                        "{header} {content_type:?} {boundary:?}"
                    );
                }
            }
        }
        // A single part and no parts at all are framed consistently too.
        let one = [ByteRange {
            start: 3,
            end_inclusive: 3,
        }];
        assert_eq!(
            multipart_length(&one, 20, "text/html", len),
            build_body(&one, &b, "text/html", &file).len() as u64
        );
        assert_eq!(
            multipart_length(&[], 20, "", len),
            build_body(&[], &b, "", &file).len() as u64
        );
    }

    #[test]
    fn multipart_length_of_a_body_is_parsable() {
        // The body a client gets back holds each part's bytes after its
        // header, in order.
        let file = b"0123456789abcdefghij";
        let RangeSpec::Multi(set) = parse(b"bytes=-3,0-2", file.len() as u64) else {
            panic!("expected Multi");
        };
        let body = build_body(set.as_slice(), b"B", "text/plain", file);
        assert_eq!(
            body,
            b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n\r\n012\
              \r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 17-19/20\r\n\r\nhij\
              \r\n--B--\r\n"
        );
    }

    #[test]
    fn multipart_length_saturates() {
        let huge = [
            ByteRange {
                start: 0,
                end_inclusive: u64::MAX - 1,
            },
            ByteRange {
                start: 0,
                end_inclusive: u64::MAX - 1,
            },
        ];
        assert_eq!(multipart_length(&huge, 20, "", u64::MAX), u64::MAX);
        assert_eq!(multipart_length(&[], usize::MAX, "", 0), u64::MAX);
    }
}
