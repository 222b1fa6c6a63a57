//! Validators and conditional requests (RFC 9110 sections 8.8 and 13).
//!
//! Nothing here touches a socket or a file, nothing allocates, and nothing
//! panics on any input.
//!
//! # Choices
//!
//! - The entity tag of a file is strong and made of its inode, its size and
//!   its modification time in nanoseconds, each in lowercase hex without
//!   leading zeros, joined by `-` and quoted: `"<ino>-<size>-<mtime_ns>"`,
//!   at most [`ETAG_MAX_LEN`] (62) bytes. A time whose nanoseconds do not
//!   fit in 64 bits (before 1970, after 2554) is written
//!   `s<secs>.<nsec>` instead, so no two times share a tag and nothing
//!   overflows. Replacing or rewriting a file changes at least one of the
//!   three.
//! - `Last-Modified` is the modification time in whole seconds, floored,
//!   and 0 for times before 1970 (as the rest of the server formats it).
//! - Entity-tag lists (`If-Match`, `If-None-Match`) are parsed without
//!   allocating by [`entity_tags`]. A member that is not a well-formed
//!   entity-tag (section 8.8.3: optional case-sensitive `W/`, then a quoted
//!   string of `etagc`) is skipped and so never matches: a garbled
//!   `If-Match` fails (412), a garbled `If-None-Match` passes. An
//!   unterminated quote ends the list. `*` is the wildcard only as the whole
//!   field value; inside a list it is a malformed member.
//! - An empty `If-Match` value is an empty list, which nothing matches
//!   (412); an empty `If-None-Match` value matches nothing and passes.
//! - Dates are the three HTTP-date forms (section 5.6.7) as the `httpdate`
//!   crate parses them, after trimming whitespace; anything else (including
//!   a list of dates or a wrong weekday) is not a valid date, and the field
//!   holding it is ignored, as sections 13.1.3 and 13.1.4 require.
//! - The server always has a current representation when it evaluates
//!   these, so `If-Match: *` passes and `If-None-Match: *` fails.
//! - A field that appeared on several lines should be passed joined with
//!   `, ` (section 5.3); the caller decides, and ignores preconditions when
//!   the response without them would not be 2xx or 412 (section 13.2.1).

use crate::proto::request::trim_ows;
use std::time::UNIX_EPOCH;

/// The longest entity tag [`ETag::new`] makes: two quotes, two dashes and
/// three 16-digit hex numbers.
pub const ETAG_MAX_LEN: usize = 62;

/// The strong entity tag of a file, kept formatted (quotes included).
#[derive(Clone, Copy)]
pub struct ETag {
    buf: [u8; ETAG_MAX_LEN],
    len: u8,
}

impl ETag {
    /// The entity tag of a file with this inode, size and modification
    /// time (seconds and nanoseconds since 1970, as `stat` gives them).
    pub fn new(ino: u64, size: u64, mtime_secs: i64, mtime_nsec: i64) -> ETag {
        let mtime_ns = i128::from(mtime_secs) * 1_000_000_000 + i128::from(mtime_nsec);
        let mut tag = ETag {
            buf: [0; ETAG_MAX_LEN],
            len: 0,
        };
        tag.push(b'"');
        tag.push_hex(ino);
        tag.push(b'-');
        tag.push_hex(size);
        tag.push(b'-');
        match u64::try_from(mtime_ns) {
            Ok(ns) => tag.push_hex(ns),
            Err(_) => {
                // Before 1970 or after 2554: seconds and nanoseconds apart
                // (never equal to an in-range tag, which has no `s`), so
                // two such times never share a tag.
                tag.push(b's');
                tag.push_hex(mtime_secs as u64);
                tag.push(b'.');
                tag.push_hex(mtime_nsec.rem_euclid(1_000_000_000) as u64);
            }
        }
        tag.push(b'"');
        tag
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_hex(&mut self, n: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        for i in (0..digits).rev() {
            self.push(HEX[((n >> (4 * i)) & 0xf) as usize]);
        }
    }

    /// The entity tag as it goes in an `ETag` header: the opaque-tag,
    /// quotes included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Appends the `ETag` field value (quotes included).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    /// Strong comparison (section 8.8.3.2): `tag` is not weak and has the
    /// same opaque-tag.
    pub fn strong_eq(&self, tag: &EntityTag<'_>) -> bool {
        !tag.weak && tag.opaque == self.as_bytes()
    }

    /// Weak comparison (section 8.8.3.2): the same opaque-tag, weak or not.
    pub fn weak_eq(&self, tag: &EntityTag<'_>) -> bool {
        tag.opaque == self.as_bytes()
    }

    /// Whether an `If-Match` / `If-None-Match` style field value (`*` or a
    /// list of entity-tags) matches this tag, by strong or weak comparison.
    /// `*` matches: the representation exists.
    pub fn matches_field(&self, field: &[u8], strong: bool) -> bool {
        if trim_ows(field) == b"*" {
            return true;
        }
        entity_tags(field).any(|tag| {
            if strong {
                self.strong_eq(&tag)
            } else {
                self.weak_eq(&tag)
            }
        })
    }
}

impl PartialEq for ETag {
    fn eq(&self, other: &ETag) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ETag {}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ETag({})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One well-formed entity-tag from a header field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// Whether it had the `W/` prefix.
    pub weak: bool,
    /// The opaque-tag, quotes included.
    pub opaque: &'a [u8],
}

/// Parses a field value that must be exactly one entity-tag (surrounding
/// whitespace allowed), as in `If-Range`.
pub fn parse_entity_tag(value: &[u8]) -> Option<EntityTag<'_>> {
    let (tag, rest) = split_entity_tag(trim_ows(value))?;
    if rest.is_empty() { tag } else { None }
}

/// The well-formed entity-tags of a `#entity-tag` list, in order; malformed
/// members and empty elements are skipped. Linear in the input, no
/// allocation.
pub fn entity_tags(field: &[u8]) -> EntityTags<'_> {
    EntityTags { rest: field }
}

/// Iterator returned by [`entity_tags`].
#[derive(Clone, Debug)]
pub struct EntityTags<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EntityTags<'a> {
    type Item = EntityTag<'a>;

    fn next(&mut self) -> Option<EntityTag<'a>> {
        loop {
            let s = skip_separators(self.rest);
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            match split_entity_tag(s) {
                // An unterminated quote: the rest of the field is inside it.
                None => {
                    self.rest = &[];
                    return None;
                }
                Some((tag, rest)) => {
                    let rest = trim_start_ows(rest);
                    if let Some(after_comma) = rest.strip_prefix(b",") {
                        self.rest = after_comma;
                    } else if rest.is_empty() {
                        self.rest = rest;
                    } else {
                        // Junk after the member: skip to the next element.
                        self.rest = skip_past_comma(rest);
                        continue;
                    }
                    if let Some(tag) = tag {
                        return Some(tag);
                    }
                }
            }
        }
    }
}

/// Splits what looks like one entity-tag off the start of `s` (which starts
/// with neither whitespace nor a comma). Returns `None` for an unterminated
/// quoted string, else the tag (`None` if malformed) and what follows it.
/// Something that is not a quoted string at all is consumed up to the next
/// comma.
fn split_entity_tag(s: &[u8]) -> Option<(Option<EntityTag<'_>>, &[u8])> {
    let (weak, body) = match s.strip_prefix(b"W/") {
        Some(body) => (true, body),
        None => (false, s),
    };
    let Some(inner) = body.strip_prefix(b"\"") else {
        let end = memchr::memchr(b',', s).unwrap_or(s.len());
        let (_, rest) = s.split_at(end);
        return Some((None, rest));
    };
    let close = memchr::memchr(b'"', inner)?;
    let (opaque, rest) = body.split_at(close + 2);
    let well_formed = inner
        .get(..close)
        .is_some_and(|c| c.iter().all(|&b| is_etagc(b)));
    let tag = well_formed.then_some(EntityTag { weak, opaque });
    Some((tag, rest))
}

/// etagc = %x21 / %x23-7E / obs-text
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

fn skip_separators(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b',', rest @ ..] = s {
        s = rest;
    }
    s
}

fn skip_past_comma(s: &[u8]) -> &[u8] {
    match memchr::memchr(b',', s) {
        Some(i) => s.get(i + 1..).unwrap_or(&[]),
        None => &[],
    }
}

fn trim_start_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// Parses an HTTP-date field value into seconds since 1970; `None` if it is
/// not exactly one valid HTTP-date.
pub fn parse_http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(trim_ows(value)).ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// The validators of a file's current representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validators {
    pub etag: ETag,
    /// `Last-Modified`, in seconds since 1970.
    pub last_modified: u64,
}

impl Validators {
    /// The validators of a file, from the fields of its `stat`.
    pub fn new(ino: u64, size: u64, mtime_secs: i64, mtime_nsec: i64) -> Validators {
        Validators {
            etag: ETag::new(ino, size, mtime_secs, mtime_nsec),
            last_modified: u64::try_from(mtime_secs).unwrap_or(0),
        }
    }
}

/// The outcome of evaluating the preconditions of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on: evaluate `Range`, then answer normally.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the preconditions of a request in the order of RFC 9110
/// section 13.2.2. Each argument is the field value if the field is present.
///
/// 1. `If-Match` (strong comparison): false → 412.
/// 2. Without `If-Match`, `If-Unmodified-Since` (ignored if not a valid
///    date): modified after the date → 412.
/// 3. `If-None-Match` (weak comparison): false → 304 for GET and HEAD, 412
///    for other methods.
/// 4. Without `If-None-Match`, for GET and HEAD only, `If-Modified-Since`
///    (ignored if not a valid date): not modified after the date → 304.
pub fn evaluate(
    method_is_get_or_head: bool,
    if_match: Option<&[u8]>,
    if_unmodified_since: Option<&[u8]>,
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<&[u8]>,
    v: &Validators,
) -> Precondition {
    evaluate_lines(
        method_is_get_or_head,
        if_match.map(std::iter::once),
        if_unmodified_since,
        if_none_match.map(std::iter::once),
        if_modified_since,
        v,
    )
}

/// [`evaluate`] with `If-Match` and `If-None-Match` given as all their
/// field lines, which together make one list (RFC 9110 5.3): a tag on the
/// second line counts as much as one on the first.
pub fn evaluate_lines<'a, L>(
    method_is_get_or_head: bool,
    if_match: Option<L>,
    if_unmodified_since: Option<&[u8]>,
    if_none_match: Option<L>,
    if_modified_since: Option<&[u8]>,
    v: &Validators,
) -> Precondition
where
    L: Iterator<Item = &'a [u8]>,
{
    if let Some(mut lines) = if_match {
        if !lines.any(|field| v.etag.matches_field(field, true)) {
            return Precondition::Failed;
        }
    } else if let Some(date) = if_unmodified_since.and_then(parse_http_date)
        && v.last_modified > date
    {
        return Precondition::Failed;
    }

    if let Some(mut lines) = if_none_match {
        if lines.any(|field| v.etag.matches_field(field, false)) {
            return if method_is_get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if method_is_get_or_head
        && let Some(date) = if_modified_since.and_then(parse_http_date)
        && v.last_modified <= date
    {
        return Precondition::NotModified;
    }

    Precondition::Proceed
}

/// Whether an `If-Range` field value lets the `Range` field apply (RFC 9110
/// section 13.1.5): an entity-tag must be strong and match strongly; a date
/// must equal `Last-Modified` exactly. Anything else (a weak tag, a list, a
/// malformed value) is false, and the whole representation is sent.
pub fn if_range_allows(if_range: &[u8], v: &Validators) -> bool {
    let value = trim_ows(if_range);
    if let Some(tag) = parse_entity_tag(value) {
        return v.etag.strong_eq(&tag);
    }
    // "A valid entity-tag can be distinguished from a valid HTTP-date by
    // examining the first three characters for a DQUOTE."
    if value.iter().take(3).any(|&b| b == b'"') {
        return false;
    }
    parse_http_date(value) == Some(v.last_modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Precondition::{Failed, NotModified, Proceed};

    // 1994-11-06 08:49:37 UTC
    const T: u64 = 784111777;
    const AT_T: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE_T: &[u8] = b"Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER_T: &[u8] = b"Sun, 06 Nov 1994 08:49:38 GMT";

    fn validators() -> Validators {
        Validators::new(0x1234, 0x10, T as i64, 500)
    }

    /// The tag of `validators()`.
    const TAG: &str = "\"1234-10-ae1b981bc490bf4\"";

    fn tags(field: &str) -> Vec<EntityTag<'_>> {
        entity_tags(field.as_bytes()).collect()
    }

    fn strong(opaque: &str) -> EntityTag<'_> {
        EntityTag {
            weak: false,
            opaque: opaque.as_bytes(),
        }
    }

    fn weak(opaque: &str) -> EntityTag<'_> {
        EntityTag {
            weak: true,
            opaque: opaque.as_bytes(),
        }
    }

    #[test]
    fn etag_format() {
        let v = validators();
        assert_eq!(T * 1_000_000_000 + 500, 0xae1b981bc490bf4);
        assert_eq!(v.etag.as_bytes(), TAG.as_bytes());
        assert_eq!(v.last_modified, T);
        let mut out = b"ETag: ".to_vec();
        v.etag.write_to(&mut out);
        assert_eq!(out, format!("ETag: {TAG}").as_bytes());
        assert_eq!(ETag::new(0, 0, 0, 0).as_bytes(), b"\"0-0-0\"");
        assert_eq!(ETag::new(1, 15, 0, 16).as_bytes(), b"\"1-f-10\"");
        assert_eq!(ETag::new(1, 15, 1, 0).as_bytes(), b"\"1-f-3b9aca00\"");
        let max = ETag::new(u64::MAX, u64::MAX, -1, 1_000_000_000 - 1);
        assert_eq!(
            max.as_bytes(),
            b"\"ffffffffffffffff-ffffffffffffffff-sffffffffffffffff.3b9ac9ff\""
        );
        // Times past 2^64 ns no longer wrap onto earlier ones.
        let far = ETag::new(u64::MAX, u64::MAX, i64::MIN, 999_999_999);
        assert_eq!(far.as_bytes().len(), ETAG_MAX_LEN);
        assert_ne!(
            ETag::new(1, 1, 18_446_744_074, 0).as_bytes(),
            ETag::new(1, 1, 0, 290_448_384).as_bytes()
        );
        assert_eq!(max.as_bytes().len(), ETAG_MAX_LEN);
        // Extreme times neither overflow nor panic.
        for (s, ns) in [
            (i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN),
            (i64::MIN, 0),
            (-1, 0),
        ] {
            let tag = ETag::new(u64::MAX, u64::MAX, s, ns);
            assert!(tag.as_bytes().len() <= ETAG_MAX_LEN);
            assert!(parse_entity_tag(tag.as_bytes()).is_some());
        }
        assert_eq!(format!("{:?}", ETag::new(0, 0, 0, 0)), "ETag(\"0-0-0\")");
    }

    #[test]
    fn etag_changes_with_each_input() {
        let base = ETag::new(1, 2, 3, 4);
        assert_eq!(base, ETag::new(1, 2, 3, 4));
        assert_ne!(base, ETag::new(9, 2, 3, 4));
        assert_ne!(base, ETag::new(1, 9, 3, 4));
        assert_ne!(base, ETag::new(1, 2, 9, 4));
        assert_ne!(base, ETag::new(1, 2, 3, 9));
    }

    #[test]
    fn validators_before_1970() {
        let v = Validators::new(1, 2, -5, 0);
        assert_eq!(v.last_modified, 0);
        assert_eq!(
            evaluate(
                true,
                None,
                None,
                None,
                Some(b"Thu, 01 Jan 1970 00:00:00 GMT"),
                &v
            ),
            NotModified
        );
    }

    #[test]
    fn entity_tag_lists() {
        assert!(tags("").is_empty());
        assert!(tags("  ,, ,\t").is_empty());
        assert_eq!(tags("\"a\""), [strong("\"a\"")]);
        assert_eq!(tags("W/\"a\""), [weak("\"a\"")]);
        assert_eq!(tags("\"\""), [strong("\"\"")]);
        assert_eq!(
            tags(" \"a\" ,W/\"b\",\t\"c\" "),
            [strong("\"a\""), weak("\"b\""), strong("\"c\"")]
        );
        assert_eq!(
            tags(",,\"a\",,,\"b\",,"),
            [strong("\"a\""), strong("\"b\"")]
        );
        // A comma is an etagc.
        assert_eq!(tags("\"a,b\", \"c\""), [strong("\"a,b\""), strong("\"c\"")]);
        // No comma between members: the junk member is skipped.
        assert_eq!(tags("\"a\" \"b\", \"c\""), [strong("\"c\"")]);
        assert!(tags("\"a\"\"b\"").is_empty());
    }

    #[test]
    fn malformed_entity_tags_are_skipped() {
        assert_eq!(tags("a, \"b\""), [strong("\"b\"")]);
        assert!(tags("*").is_empty());
        assert_eq!(tags("*, \"b\""), [strong("\"b\"")]);
        assert_eq!(tags("w/\"a\", \"b\""), [strong("\"b\"")]);
        assert_eq!(tags("W/a, \"b\""), [strong("\"b\"")]);
        assert_eq!(tags("W/ \"a\", \"b\""), [strong("\"b\"")]);
        assert!(tags("W/").is_empty());
        assert!(tags("W").is_empty());
        assert_eq!(tags("\"a b\", \"c\""), [strong("\"c\"")]);
        assert_eq!(tags("\"a\tb\", \"c\""), [strong("\"c\"")]);
        assert_eq!(tags("\"a\x7fb\", \"c\""), [strong("\"c\"")]);
        assert_eq!(tags("\"a\"x, \"c\""), [strong("\"c\"")]);
        assert!(tags("\"a\"x").is_empty());
        // obs-text is allowed.
        assert_eq!(
            entity_tags(b"\"\x80\xff\"").collect::<Vec<_>>(),
            [EntityTag {
                weak: false,
                opaque: b"\"\x80\xff\""
            }]
        );
    }

    #[test]
    fn unterminated_quotes_end_the_list() {
        assert!(tags("\"").is_empty());
        assert!(tags("\"a").is_empty());
        assert_eq!(tags("\"a\", \"b"), [strong("\"a\"")]);
        assert!(tags("\"a, \"b\"").is_empty());
        assert!(tags("W/\"").is_empty());
        assert_eq!(tags("\"a\", W/\"b, \"c\""), [strong("\"a\"")]);
    }

    #[test]
    fn huge_and_garbage_lists() {
        let mb = 1 << 20;
        for field in [
            ",".repeat(mb),
            " ".repeat(mb),
            "\"".repeat(mb),
            "W/".repeat(mb),
            "x".repeat(mb),
            "\"a\"".repeat(mb / 3),
            "\"a\" ".repeat(mb / 4),
            "\"x\",".repeat(mb / 4),
            "W/\"x\",".repeat(mb / 6),
            format!("\"{}", "a".repeat(mb)),
            format!("\"{}\"", "a".repeat(mb)),
        ] {
            let n = entity_tags(field.as_bytes()).count();
            assert!(n <= mb);
            let v = validators();
            let _ = evaluate(
                true,
                Some(field.as_bytes()),
                None,
                Some(field.as_bytes()),
                None,
                &v,
            );
            let _ = if_range_allows(field.as_bytes(), &v);
        }
        assert_eq!(entity_tags("\"x\",".repeat(1000).as_bytes()).count(), 1000);
        // Our tag at the end of a long list is still found.
        let field = format!("{}{TAG}", "\"x\", W/\"y\", junk, ".repeat(10000));
        assert!(validators().etag.matches_field(field.as_bytes(), true));
    }

    #[test]
    fn every_short_field_never_panics() {
        let v = validators();
        let alphabet = [b'"', b'W', b'/', b',', b' ', b'*', b'a', 0x80, 0x00];
        for &a in &alphabet {
            for &b in &alphabet {
                for &c in &alphabet {
                    for &d in &alphabet {
                        let field = [a, b, c, d];
                        let _ = entity_tags(&field).count();
                        let _ = parse_entity_tag(&field);
                        let _ = if_range_allows(&field, &v);
                        let _ = evaluate(
                            false,
                            Some(&field),
                            Some(&field),
                            Some(&field),
                            Some(&field),
                            &v,
                        );
                        let _ = evaluate(true, None, Some(&field), None, Some(&field), &v);
                    }
                }
            }
        }
    }

    #[test]
    fn comparisons() {
        let etag = ETag::new(1, 2, 3, 4);
        let same = etag.as_bytes();
        let same = std::str::from_utf8(same).unwrap();
        assert!(etag.strong_eq(&strong(same)));
        assert!(!etag.strong_eq(&weak(same)));
        assert!(etag.weak_eq(&strong(same)));
        assert!(etag.weak_eq(&weak(same)));
        assert!(!etag.strong_eq(&strong("\"other\"")));
        assert!(!etag.weak_eq(&weak("\"other\"")));
        // Opaque-tags compare byte by byte: case matters.
        let upper = same.to_ascii_uppercase();
        assert!(upper != same);
        assert!(!etag.weak_eq(&strong(&upper)));
    }

    #[test]
    fn parse_single_entity_tag() {
        assert_eq!(parse_entity_tag(b"\"a\""), Some(strong("\"a\"")));
        assert_eq!(parse_entity_tag(b" W/\"a\" "), Some(weak("\"a\"")));
        assert_eq!(parse_entity_tag(b"\"a\", \"b\""), None);
        assert_eq!(parse_entity_tag(b"\"a\" x"), None);
        assert_eq!(parse_entity_tag(b"\"a"), None);
        assert_eq!(parse_entity_tag(b"a"), None);
        assert_eq!(parse_entity_tag(b""), None);
        assert_eq!(parse_entity_tag(b"*"), None);
        assert_eq!(parse_entity_tag(b"\"a b\""), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date(AT_T), Some(T));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(T));
        assert_eq!(
            parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT\t"),
            Some(T)
        );
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253402300799)
        );
        for bad in [
            &b""[..],
            b"garbage",
            b"784111777",
            b"Mon, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:60 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Wed, 31 Dec 1969 23:59:59 GMT",
            b"Sat, 01 Jan 10000 00:00:00 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // RFC 9110 section 13.2.2, step by step.

    #[test]
    fn no_preconditions() {
        let v = validators();
        assert_eq!(evaluate(true, None, None, None, None, &v), Proceed);
        assert_eq!(evaluate(false, None, None, None, None, &v), Proceed);
    }

    #[test]
    fn if_match() {
        let v = validators();
        for method in [true, false] {
            let ev = |field: &str| evaluate(method, Some(field.as_bytes()), None, None, None, &v);
            assert_eq!(ev(TAG), Proceed);
            assert_eq!(ev("*"), Proceed);
            assert_eq!(ev(" * "), Proceed);
            assert_eq!(ev(&format!("\"x\", {TAG}")), Proceed);
            assert_eq!(ev(&format!("junk, {TAG}")), Proceed);
            assert_eq!(ev("\"x\""), Failed);
            // Strong comparison: a weak tag never matches.
            assert_eq!(ev(&format!("W/{TAG}")), Failed);
            assert_eq!(ev(""), Failed);
            assert_eq!(ev("garbage"), Failed);
            assert_eq!(ev(&format!("*, {TAG}")), Proceed);
            assert_eq!(ev("*, \"x\""), Failed);
            assert_eq!(ev("**"), Failed);
        }
    }

    #[test]
    fn if_unmodified_since() {
        let v = validators();
        for method in [true, false] {
            let ev = |date: &[u8]| evaluate(method, None, Some(date), None, None, &v);
            assert_eq!(ev(AT_T), Proceed);
            assert_eq!(ev(AFTER_T), Proceed);
            assert_eq!(ev(BEFORE_T), Failed);
            // An invalid date is ignored.
            assert_eq!(ev(b"yesterday"), Proceed);
            assert_eq!(ev(b""), Proceed);
        }
    }

    #[test]
    fn if_match_overrides_if_unmodified_since() {
        let v = validators();
        let tag = TAG.as_bytes();
        // If-Unmodified-Since is ignored when If-Match is present.
        assert_eq!(
            evaluate(false, Some(tag), Some(BEFORE_T), None, None, &v),
            Proceed
        );
        assert_eq!(
            evaluate(false, Some(b"*"), Some(BEFORE_T), None, None, &v),
            Proceed
        );
        assert_eq!(
            evaluate(false, Some(b"\"x\""), Some(AFTER_T), None, None, &v),
            Failed
        );
        // Even an If-Match that is garbage.
        assert_eq!(
            evaluate(true, Some(b"\""), Some(AFTER_T), None, None, &v),
            Failed
        );
    }

    #[test]
    fn if_none_match() {
        let v = validators();
        let weak_tag = format!("W/{TAG}");
        for field in [
            TAG,
            weak_tag.as_str(),
            "*",
            "\t*\t",
            format!("\"x\", {TAG}").as_str(),
            format!("\"x\",W/{TAG}").as_str(),
        ] {
            let f = Some(field.as_bytes());
            assert_eq!(
                evaluate(true, None, None, f, None, &v),
                NotModified,
                "{field}"
            );
            assert_eq!(evaluate(false, None, None, f, None, &v), Failed, "{field}");
        }
        for field in ["\"x\"", "W/\"x\"", "", "garbage", "*, \"x\"", "\"1234-10\""] {
            let f = Some(field.as_bytes());
            assert_eq!(evaluate(true, None, None, f, None, &v), Proceed, "{field}");
            assert_eq!(evaluate(false, None, None, f, None, &v), Proceed, "{field}");
        }
    }

    #[test]
    fn if_modified_since() {
        let v = validators();
        let ev = |get: bool, date: &[u8]| evaluate(get, None, None, None, Some(date), &v);
        assert_eq!(ev(true, AT_T), NotModified);
        assert_eq!(ev(true, AFTER_T), NotModified);
        assert_eq!(ev(true, BEFORE_T), Proceed);
        assert_eq!(ev(true, b"garbage"), Proceed);
        assert_eq!(ev(true, b""), Proceed);
        assert_eq!(
            ev(
                true,
                b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"
            ),
            Proceed
        );
        // Only for GET and HEAD.
        assert_eq!(ev(false, AT_T), Proceed);
        assert_eq!(ev(false, AFTER_T), Proceed);
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        let v = validators();
        let tag = TAG.as_bytes();
        // Present and not matching: If-Modified-Since is ignored.
        assert_eq!(
            evaluate(true, None, None, Some(b"\"x\""), Some(AFTER_T), &v),
            Proceed
        );
        // Even when it is garbage or empty.
        assert_eq!(
            evaluate(true, None, None, Some(b""), Some(AFTER_T), &v),
            Proceed
        );
        assert_eq!(
            evaluate(true, None, None, Some(b"\""), Some(AFTER_T), &v),
            Proceed
        );
        // Matching: 304 whatever the date says.
        assert_eq!(
            evaluate(true, None, None, Some(tag), Some(BEFORE_T), &v),
            NotModified
        );
    }

    #[test]
    fn evaluation_order() {
        let v = validators();
        let tag = Some(TAG.as_bytes());
        let other = Some(&b"\"x\""[..]);
        // Step 1 before step 3: a failed If-Match is 412 even if
        // If-None-Match would give 304.
        assert_eq!(evaluate(true, other, None, tag, None, &v), Failed);
        // Step 2 before step 3.
        assert_eq!(evaluate(true, None, Some(BEFORE_T), tag, None, &v), Failed);
        // Step 2 before step 4.
        assert_eq!(
            evaluate(true, None, Some(BEFORE_T), None, Some(AT_T), &v),
            Failed
        );
        // Step 1 passes, step 3 decides.
        assert_eq!(evaluate(true, tag, None, tag, None, &v), NotModified);
        assert_eq!(evaluate(false, tag, None, tag, None, &v), Failed);
        assert_eq!(evaluate(true, tag, None, other, None, &v), Proceed);
        // Step 1 passes, step 4 decides.
        assert_eq!(evaluate(true, tag, None, None, Some(AT_T), &v), NotModified);
        assert_eq!(evaluate(true, tag, None, None, Some(BEFORE_T), &v), Proceed);
        // Step 2 passes, steps 3 and 4 decide.
        assert_eq!(evaluate(true, None, Some(AT_T), tag, None, &v), NotModified);
        assert_eq!(
            evaluate(true, None, Some(AT_T), None, Some(AT_T), &v),
            NotModified
        );
        assert_eq!(
            evaluate(true, None, Some(AT_T), None, Some(BEFORE_T), &v),
            Proceed
        );
        // Everything at once.
        assert_eq!(
            evaluate(true, tag, Some(BEFORE_T), tag, Some(BEFORE_T), &v),
            NotModified
        );
        assert_eq!(
            evaluate(true, tag, Some(BEFORE_T), other, Some(AT_T), &v),
            Proceed
        );
        assert_eq!(
            evaluate(false, tag, Some(BEFORE_T), other, Some(AT_T), &v),
            Proceed
        );
        assert_eq!(
            evaluate(false, other, Some(AT_T), other, Some(AT_T), &v),
            Failed
        );
    }

    #[test]
    fn if_range() {
        let v = validators();
        assert!(if_range_allows(TAG.as_bytes(), &v));
        assert!(if_range_allows(format!("  {TAG} ").as_bytes(), &v));
        assert!(if_range_allows(AT_T, &v));
        assert!(if_range_allows(b"Sunday, 06-Nov-94 08:49:37 GMT", &v));
        assert!(if_range_allows(b" Sun Nov  6 08:49:37 1994 ", &v));
        // A weak tag never matches, even with the same opaque-tag.
        assert!(!if_range_allows(format!("W/{TAG}").as_bytes(), &v));
        assert!(!if_range_allows(b"\"x\"", &v));
        // The date must be exactly Last-Modified.
        assert!(!if_range_allows(BEFORE_T, &v));
        assert!(!if_range_allows(AFTER_T, &v));
        // Anything else.
        for bad in [
            "",
            "*",
            "garbage",
            "\"",
            "\"unterminated",
            "x\"y\"",
            "W/",
            "\"1234-10-ae1b981bc490bf4",
        ] {
            assert!(!if_range_allows(bad.as_bytes(), &v), "{bad}");
        }
        assert!(!if_range_allows(format!("{TAG}, {TAG}").as_bytes(), &v));
        assert!(!if_range_allows(format!("\"x\", {TAG}").as_bytes(), &v));
        assert!(!if_range_allows(format!("{TAG} x").as_bytes(), &v));
        assert!(!if_range_allows(b"\xff\xfe\xfd", &v));
    }
}
