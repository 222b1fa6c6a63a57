//! Static files and directories, answered as Python's `SimpleHTTPRequestHandler.send_head`.

use crate::listing;
use crate::mime;
use crate::respond::{Body, Ctx, Reply, Request, Scratch};
use crate::sys;
use crate::urlpath::{self, split_target};
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, UNIX_EPOCH};

const INDEX_PAGES: [&[u8]; 2] = [b"index.html", b"index.htm"];

pub fn serve(ctx: &Ctx, req: &Request, out: &mut Vec<u8>, scratch: &mut Scratch) -> Reply {
    let target = req.line.target;
    let found = urlpath::translate(target, &mut scratch.path);
    if found.has_nul {
        // Python crashes on this (an uncaught ValueError); no file has a NUL
        // in its name, so the honest answer is 404.
        return not_found(ctx, out);
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

    // A pre-compressed twin (`file.br`, `file.gz`) the client accepts is
    // sent in place of the file, with the file's type.
    let mut encoding = None;
    if let Some(accept) = req.header("Accept-Encoding") {
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
                    (file, meta, encoding) = (f, m, Some(coding));
                    break;
                }
                _ => continue,
            }
        }
    }

    if not_modified_since(req, &meta) {
        ctx.head(out, 304).finish();
        return Reply {
            status: 304,
            body: Body::None,
            close: false,
            discard: 0,
            error: None,
        };
    }
    let len = meta.len();
    let mut head = ctx.head(out, 200);
    // The name whose extension gives the content type.
    let type_name = index_name.unwrap_or(&scratch.path);
    head.header("Content-type", mime::content_type(type_name).as_bytes());
    if let Some(coding) = encoding {
        head.header("Content-Encoding", coding.as_bytes());
        head.header("Vary", b"Accept-Encoding");
    }
    head.header_num("Content-Length", len);
    head.header("Last-Modified", &http_date(&meta));
    head.finish();
    let body = if ctx.head_only || len == 0 {
        Body::None
    } else {
        Body::File {
            file,
            offset: 0,
            len,
        }
    };
    Reply {
        status: 200,
        body,
        close: false,
        discard: 0,
        error: None,
    }
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
    location.extend_from_slice(url.path);
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
    Reply {
        status: 301,
        body: Body::None,
        close: false,
        discard: 0,
        error: None,
    }
}

fn list_directory(ctx: &Ctx, target: &[u8], rel: &[u8], out: &mut Vec<u8>) -> Reply {
    let dir = ctx.site.root_path.join(std::ffi::OsStr::from_bytes(rel));
    let mut page = Vec::new();
    if listing::render(&dir, target, &mut page).is_err() {
        return ctx.error(out, 404, Some("No permission to list directory"), None);
    }
    let mut head = ctx.head(out, 200);
    head.header("Content-type", b"text/html; charset=utf-8");
    head.header_num("Content-Length", page.len() as u64);
    head.finish();
    if !ctx.head_only {
        out.extend_from_slice(&page);
    }
    Reply {
        status: 200,
        body: Body::None,
        close: false,
        discard: 0,
        error: None,
    }
}

/// Python's `If-Modified-Since` rule: honoured only without
/// `If-None-Match`; an unparsable date is ignored.
fn not_modified_since(req: &Request, meta: &Metadata) -> bool {
    if req.header("If-None-Match").is_some() {
        return false;
    }
    let Some(since) = req.header("If-Modified-Since").and_then(parse_utc_date) else {
        return false;
    };
    u64::try_from(meta.mtime()).is_ok_and(|m| m <= since) || meta.mtime() < 0
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

fn http_date(meta: &Metadata) -> Vec<u8> {
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

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
