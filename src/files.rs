//! Static files and directories, answered as Python's `SimpleHTTPRequestHandler.send_head`.

use crate::cache::{Entry, FileFacts};
use crate::conditional::{self, Precondition, Validators};
use crate::listing;
use crate::mime;
use crate::range::{self, ByteRange, RangeSpec};
use crate::respond::{Body, Ctx, Reply, Request, Scratch};
use crate::response::push_error_page;
use crate::status;
use crate::sys;
use crate::urlpath::{self, split_target};
use std::fs::{File, Metadata};

use std::os::unix::ffi::OsStrExt;

use std::rc::Rc;
use std::time::UNIX_EPOCH;

const INDEX_PAGES: [&[u8]; 2] = [b"index.html", b"index.htm"];

pub fn serve(ctx: &Ctx, req: &Request, out: &mut Vec<u8>, scratch: &mut Scratch) -> Reply {
    let target = req.line.target;
    let found = urlpath::translate(target, &mut scratch.path);
    if found.has_nul {
        // Python crashes on this (an uncaught ValueError); no file has a NUL
        // in its name, so the honest answer is 404.
        return not_found(ctx, out);
    }
    if !found.trailing_slash
        && let Some(entry) = scratch.cache.as_ref().and_then(|c| c.get(&scratch.path))
    {
        return send_entity(ctx, req, out, &cached_entity(entry, req));
    }
    let Ok(mut file) = sys::open_at(&ctx.site.root, &scratch.path, &mut scratch.cpath) else {
        return not_found(ctx, out);
    };
    let Ok(mut meta) = file.metadata() else {
        return not_found(ctx, out);
    };
    if ctx.site.contain_symlinks && !inside_root(&file, &ctx.site.root_path) {
        return not_found(ctx, out);
    }

    // The index page served for a directory, if that is what we serve.
    let mut index_name: Option<&'static [u8]> = None;
    if meta.is_dir() {
        if split_target(target).path.last() != Some(&b'/') {
            return redirect_to_slash(ctx, target, out);
        }
        match open_index(&file, &mut scratch.cpath) {
            Some((index, index_meta, name)) => {
                (file, meta, index_name) = (index, index_meta, Some(name))
            }
            None => return list_directory(ctx, target, &scratch.path, out),
        }
    } else if found.trailing_slash || !meta.is_file() {
        // A file named with a trailing slash is 404 (Python's issue 17324).
        // FIFOs and devices are never served: reading them could block or
        // never end.
        return not_found(ctx, out);
    }

    let file = Rc::new(file);
    if index_name.is_none()
        && let Some(cache) = scratch.cache.as_mut()
    {
        cache.insert(&ctx.site.root_path, &scratch.path, &file);
        if let Some(entry) = cache.get(&scratch.path) {
            return send_entity(ctx, req, out, &cached_entity(entry, req));
        }
    }
    let content_type = mime::content_type(index_name.unwrap_or(&scratch.path));
    let (facts, encoding) = match twin(ctx, req, scratch, index_name) {
        Some((facts, coding)) => (facts, Some(coding)),
        None => (FileFacts::from_meta(file, &meta), None),
    };
    let entity = Entity {
        facts,
        content_type,
        encoding,
    };
    send_entity(ctx, req, out, &entity)
}

/// The entity a cache entry offers this request: a pre-compressed twin
/// when the client accepts it, else the file itself.
fn cached_entity(entry: &Entry, req: &Request) -> Entity {
    let accept = req.header("Accept-Encoding").unwrap_or(b"");
    let (chosen, encoding) = match (&entry.br, &entry.gzip) {
        (Some(br), _) if accepts(accept, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(accept, "gzip") => (gz, Some("gzip")),
        _ => (&entry.identity, None),
    };
    Entity {
        facts: chosen.clone(),
        content_type: entry.content_type,
        encoding,
    }
}

/// A pre-compressed twin (`file.br`, `file.gz`) the client accepts, sent in
/// place of the file (with the file's type), and its encoding.
fn twin(
    ctx: &Ctx,
    req: &Request,
    scratch: &mut Scratch,
    index_name: Option<&[u8]>,
) -> Option<(FileFacts, &'static str)> {
    let accept = req.header("Accept-Encoding")?;
    for (coding, suffix) in [("br", &b".br"[..]), ("gzip", b".gz")] {
        if !accepts(accept, coding) {
            continue;
        }
        let twin = &mut scratch.twin;
        twin.clear();
        twin.extend_from_slice(&scratch.path);
        if let Some(name) = index_name {
            if !twin.is_empty() {
                twin.push(b'/');
            }
            twin.extend_from_slice(name);
        }
        twin.extend_from_slice(suffix);
        let Ok(f) = sys::open_at(&ctx.site.root, twin, &mut scratch.cpath) else {
            continue;
        };
        match f.metadata() {
            Ok(m)
                if m.is_file()
                    && (!ctx.site.contain_symlinks || inside_root(&f, &ctx.site.root_path)) =>
            {
                return Some((FileFacts::from_meta(Rc::new(f), &m), coding));
            }
            _ => continue,
        }
    }
    None
}

/// A file ready to be sent, with what the response says about it.
pub struct Entity {
    pub facts: FileFacts,
    pub content_type: &'static str,
    /// `Content-Encoding` of a pre-compressed twin.
    pub encoding: Option<&'static str>,
}

/// Most bytes a multi-range answer gathers in memory; a larger one is
/// answered with the whole file (RFC 9110 allows ignoring Range).
const MULTIPART_MAX: u64 = 1 << 20;

/// Answers with a file: preconditions (RFC 9110 13.2.2, with Python's
/// reading of If-Modified-Since), then Range, then the head and body.
fn send_entity(ctx: &Ctx, req: &Request, out: &mut Vec<u8>, entity: &Entity) -> Reply {
    let v = &entity.facts.validators;
    let inm = req.header("If-None-Match");
    let verdict = conditional::evaluate(
        true,
        req.header("If-Match"),
        req.header("If-Unmodified-Since"),
        inm,
        None,
        v,
    );
    let python_ims = inm.is_none()
        && req
            .header("If-Modified-Since")
            .and_then(parse_utc_date)
            .is_some_and(|since| v.last_modified <= since);
    match verdict {
        Precondition::Failed => return ctx.error(out, 412, None, None),
        Precondition::NotModified => return not_modified(ctx, out, v),
        Precondition::Proceed if python_ims => return not_modified(ctx, out, v),
        Precondition::Proceed => {}
    }

    let len = entity.facts.len;
    let mut spec = RangeSpec::Whole;
    if !ctx.head_only
        && let Some(range) = req.header("Range")
        && req
            .header("If-Range")
            .is_none_or(|ir| conditional::if_range_allows(ir, v))
    {
        spec = range::parse(range, len);
    }
    let (status, start, count) = match spec {
        RangeSpec::Whole => (200, 0, len),
        RangeSpec::Single {
            start,
            end_inclusive,
        } => (206, start, end_inclusive - start + 1),
        RangeSpec::Unsatisfiable => return unsatisfiable(ctx, out, len),
        RangeSpec::Multi(set) => {
            let ranges = set.as_slice();
            let total =
                range::multipart_length(ranges, range::BOUNDARY_LEN, entity.content_type, len);
            if total <= MULTIPART_MAX
                && let Some(reply) = multipart(ctx, out, entity, ranges, total)
            {
                return reply;
            }
            (200, 0, len)
        }
    };
    let mut head = ctx.head(out, status);
    head.header("Content-type", entity.content_type.as_bytes());
    if let Some(coding) = entity.encoding {
        head.header("Content-Encoding", coding.as_bytes());
        head.header("Vary", b"Accept-Encoding");
    }
    head.header_num("Content-Length", count);
    if status == 206 {
        let mut value = Vec::with_capacity(64);
        range::write_content_range(&mut value, start, start + count - 1, len);
        head.header("Content-Range", &value);
    }
    head.header("Last-Modified", &entity.facts.last_modified);
    head.header("ETag", v.etag.as_bytes());
    head.header("Accept-Ranges", b"bytes");
    head.finish();
    let body = match &entity.facts.content {
        _ if ctx.head_only || count == 0 => Body::None,
        Some(bytes) if bytes.len() as u64 >= start + count => {
            // One send for head and body: the bytes follow the head.
            out.extend_from_slice(&bytes[start as usize..(start + count) as usize]);
            Body::None
        }
        Some(_) => Body::File {
            file: Rc::clone(&entity.facts.file),
            offset: start,
            len: count,
        },
        None => Body::File {
            file: Rc::clone(&entity.facts.file),
            offset: start,
            len: count,
        },
    };
    Reply {
        status,
        body,
        close: false,
        discard: 0,
        error: None,
    }
}

fn not_modified(ctx: &Ctx, out: &mut Vec<u8>, v: &Validators) -> Reply {
    let mut head = ctx.head(out, 304);
    head.header("ETag", v.etag.as_bytes());
    head.finish();
    Reply::complete(304)
}

/// 416 with `Content-Range: bytes */len`; the connection stays open.
fn unsatisfiable(ctx: &Ctx, out: &mut Vec<u8>, len: u64) -> Reply {
    let mut page = Vec::new();
    push_error_page(
        &mut page,
        416,
        status::phrase(416),
        status::explanation(416),
    );
    let mut value = Vec::with_capacity(32);
    range::write_unsatisfied(&mut value, len);
    let mut head = ctx.head(out, 416);
    head.header("Content-Range", &value);
    head.header("Content-Type", b"text/html;charset=utf-8");
    head.header_num("Content-Length", page.len() as u64);
    head.finish();
    out.extend_from_slice(&page);
    Reply::complete(416)
}

/// A `multipart/byteranges` answer, built in memory (it is small).
fn multipart(
    ctx: &Ctx,
    out: &mut Vec<u8>,
    entity: &Entity,
    ranges: &[ByteRange],
    total: u64,
) -> Option<Reply> {
    use std::os::unix::fs::FileExt;
    let boundary = range::boundary(entity.facts.validators.last_modified ^ entity.facts.len);
    let mut body = Vec::with_capacity(usize::try_from(total).ok()?);
    for r in ranges {
        range::part_header(
            &mut body,
            &boundary,
            entity.content_type,
            r.start,
            r.end_inclusive,
            entity.facts.len,
        );
        let at = body.len();
        body.resize(at + usize::try_from(r.len()).ok()?, 0);
        entity
            .facts
            .file
            .read_exact_at(&mut body[at..], r.start)
            .ok()?;
    }
    range::closing(&mut body, &boundary);
    let mut content_type = Vec::with_capacity(64);
    range::write_multipart_content_type(&mut content_type, &boundary);
    let mut head = ctx.head(out, 206);
    head.header("Content-Type", &content_type);
    head.header_num("Content-Length", body.len() as u64);
    head.header("Last-Modified", &entity.facts.last_modified);
    head.header("ETag", entity.facts.validators.etag.as_bytes());
    head.header("Accept-Ranges", b"bytes");
    head.finish();
    out.extend_from_slice(&body);
    Some(Reply::complete(206))
}

/// Does an `Accept-Encoding` value allow `coding` (by name or `*`, with a
/// non-zero quality)?
pub fn accepts(header: &[u8], coding: &str) -> bool {
    let mut star = false;
    for item in header.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or(b"").trim_ascii();
        let q_zero = parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|&b| b == b'0' || b == b'.')
        });
        if name.eq_ignore_ascii_case(coding.as_bytes()) {
            return !q_zero;
        }
        if name == b"*" {
            star = !q_zero;
        }
    }
    star
}

/// Is the opened file really inside the served directory, symlinks
/// resolved? Asked of `/proc/self/fd`, so it is the file we will send.
fn inside_root(file: &File, root: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    std::fs::read_link(link).is_ok_and(|real| real.starts_with(root))
}

fn not_found(ctx: &Ctx, out: &mut Vec<u8>) -> Reply {
    ctx.error(out, 404, Some("File not found"), None)
}

/// `index.html`, then `index.htm`, if it is a regular file.
fn open_index(dir: &File, cpath: &mut Vec<u8>) -> Option<(File, Metadata, &'static [u8])> {
    INDEX_PAGES.iter().find_map(|&name| {
        let file = sys::open_at(dir, name, cpath).ok()?;
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, meta, name))
    })
}

/// 301 to the same target with a slash after the path, query and fragment
/// kept (`urlunsplit` drops an empty `?` or `#`).
fn redirect_to_slash(ctx: &Ctx, target: &[u8], out: &mut Vec<u8>) -> Reply {
    let url = split_target(target);
    let mut location = Vec::with_capacity(target.len() + 1);
    push_local_path(&mut location, url.path);
    location.push(b'/');
    if !url.query.is_empty() {
        location.push(b'?');
        location.extend_from_slice(url.query);
    }
    if !url.fragment.is_empty() {
        location.push(b'#');
        location.extend_from_slice(url.fragment);
    }
    let mut head = ctx.head(out, 301);
    head.header("Location", &location);
    head.header("Content-Length", b"0");
    head.finish();
    Reply::complete(301)
}

/// Writes `path` so that a browser cannot read it as another host: an
/// absolute-form target (`http://host/x`) keeps only its path, the result
/// starts with exactly one `/`, and `\` (which browsers read as `/`) is
/// percent-encoded. Python 3.13 echoes these as they came: an open redirect.
fn push_local_path(out: &mut Vec<u8>, path: &[u8]) {
    let mut path = path;
    if let Some(i) = memchr::memmem::find(path, b"://") {
        let after = &path[i + 3..];
        path = memchr::memchr(b'/', after).map_or(&b""[..], |j| &after[j..]);
    }
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    out.push(b'/');
    for &b in &path[start..] {
        if b == b'\\' {
            out.extend_from_slice(b"%5C");
        } else {
            out.push(b);
        }
    }
}

fn list_directory(ctx: &Ctx, target: &[u8], rel: &[u8], out: &mut Vec<u8>) -> Reply {
    let dir = ctx.site.root_path.join(std::ffi::OsStr::from_bytes(rel));
    let mut page = Vec::new();
    let rendered = if ctx.site.rich_listing {
        listing::render_rich(&dir, target, split_target(target).query, &mut page)
    } else {
        listing::render(&dir, target, &mut page)
    };
    if rendered.is_err() {
        return ctx.error(out, 404, Some("No permission to list directory"), None);
    }
    let mut head = ctx.head(out, 200);
    head.header("Content-type", b"text/html; charset=utf-8");
    head.header_num("Content-Length", page.len() as u64);
    head.finish();
    if !ctx.head_only {
        out.extend_from_slice(&page);
    }
    Reply::complete(200)
}

/// A date as Python's `email.utils.parsedate_to_datetime` reads it, in
/// seconds since the epoch, when it is UTC (or has no zone, which Python
/// takes as UTC); dates in other zones are ignored, as Python ignores them.
pub fn parse_utc_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if let Ok(t) = httpdate::parse_http_date(text) {
        return t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
    }
    let mut words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if words
        .first()
        .is_some_and(|w| w.chars().all(|c| c.is_ascii_alphabetic()) && month(w).is_none())
    {
        words.remove(0); // the weekday
    }
    let (mut day, mut mon) = (*words.first()?, *words.get(1)?);
    if month(day).is_some() {
        (day, mon) = (mon, day);
    }
    let day: u64 = day.parse().ok()?;
    let mon = month(mon)?;
    let mut year: u64 = words.get(2)?.parse().ok()?;
    if year < 100 {
        year += if year > 68 { 1900 } else { 2000 };
    }
    let mut hms = words.get(3)?.split(':').map(|p| p.parse::<u64>());
    let (h, m) = (hms.next()?.ok()?, hms.next()?.ok()?);
    let sec = hms.next().transpose().ok()?.unwrap_or(0);
    let zone = words.get(4).copied().unwrap_or("");
    let utc = match zone.as_bytes().first() {
        Some(b'+' | b'-') => zone[1..].bytes().all(|b| b == b'0'),
        _ => !["EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"]
            .contains(&zone.to_ascii_uppercase().as_str()),
    };
    if !utc || day == 0 || day > 31 || h > 23 || m > 59 || sec > 61 {
        return None;
    }
    Some(days_from_civil(year, mon, day)? * 86400 + h * 3600 + m * 60 + sec)
}

fn month(word: &str) -> Option<u64> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let w = word.get(..3)?.to_ascii_lowercase();
    NAMES.iter().position(|n| *n == w).map(|i| i as u64 + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm); `None` before 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_host() {
        for (path, want) in [
            (&b"/dir"[..], &b"/dir"[..]),
            (b"http://evil.example/../..", b"/../.."),
            (b"http://evil.example", b"/"),
            (b"/\\evil.example/..", b"/%5Cevil.example/.."),
            (b"//evil.example", b"/evil.example"),
            (b"dir", b"/dir"),
        ] {
            let mut out = Vec::new();
            push_local_path(&mut out, path);
            assert_eq!(out, want, "{}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts(b"gzip, deflate, br", "br"));
        assert!(accepts(b"GZIP;q=0.5", "gzip"));
        assert!(!accepts(b"gzip;q=0", "gzip"));
        assert!(!accepts(b"gzip;q=0.0, *", "gzip"));
        assert!(accepts(b"*", "br"));
        assert!(!accepts(b"identity", "gzip"));
        assert!(!accepts(b"", "gzip"));
    }

    #[test]
    fn dates_as_python_reads_them() {
        let t = 4_070_908_800; // 2099-01-01 00:00:00 UTC
        for v in [
            "Thu, 01 Jan 2099 00:00:00 GMT",
            "Thu, 01 Jan 2099 00:00:00 +0000",
            "Thu, 01 Jan 2099 00:00:00 -0000",
            "Thu, 01 Jan 2099 00:00:00 UTC",
            "Thu, 01 Jan 2099 00:00:00",
            "01 Jan 2099 00:00:00",
        ] {
            assert_eq!(parse_utc_date(v.as_bytes()), Some(t), "{v}");
        }
        assert_eq!(parse_utc_date(b"Thu, 01 Jan 2099 00:00:00 +0100"), None);
        assert_eq!(parse_utc_date(b"Thu, 01 Jan 2099 00:00:00 EST"), None);
        assert_eq!(parse_utc_date(b"garbage"), None);
        assert_eq!(parse_utc_date(b""), None);
        assert_eq!(parse_utc_date(b"Thu, 99 Jan 2099 00:00:00"), None);
    }
}
