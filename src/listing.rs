//! Directory listings in the HTML Python 3.13's `list_directory` writes.

use crate::escape::push_html;
use crate::urlpath::{display_path, push_quoted};
use std::fs;
use std::io;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One directory entry, with what the listing needs to know about it.
struct Entry {
    name: Vec<u8>,
    sort_key: Vec<u32>,
    is_dir: bool,
    is_link: bool,
    /// Size and modification time (seconds), read only for rich listings.
    size: u64,
    mtime: i64,
}

/// Appends the listing of `dir`, requested as `target`, to `out`.
/// An unreadable directory is an error, which Python answers with
/// 404 "No permission to list directory".
pub fn render(dir: &Path, target: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let entries = read_entries(dir, false)?;
    let title = title(target);
    out.extend_from_slice(
        b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
    );
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</title>\n</head>\n<body>\n<h1>");
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</h1>\n<hr>\n<ul>\n");
    for e in &entries {
        push_item(out, e);
        out.extend_from_slice(b"</li>\n");
    }
    out.extend_from_slice(b"</ul>\n<hr>\n</body>\n</html>\n");
    Ok(())
}

fn title(target: &[u8]) -> Vec<u8> {
    let mut title = b"Directory listing for ".to_vec();
    push_html(&mut title, &display_path(target));
    title
}

/// `<li><a href="link">name</a>` exactly as Python writes it, so scripts
/// that scrape listings read both kinds the same way.
fn push_item(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(b"<li><a href=\"");
    push_quoted(out, &e.name);
    if e.is_dir {
        out.push(b'/');
    }
    out.extend_from_slice(b"\">");
    push_html(out, &e.name);
    // A link to a directory shows `@` but links with `/`, as in Python.
    if e.is_link {
        out.push(b'@');
    } else if e.is_dir {
        out.push(b'/');
    }
    out.extend_from_slice(b"</a>");
}

/// How a rich listing is ordered: `?sort=name|size|time&order=asc|desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Name,
    Size,
    Time,
}

pub fn parse_sort(query: &[u8]) -> (SortBy, bool) {
    let (mut by, mut desc) = (SortBy::Name, false);
    for pair in query.split(|&b| b == b'&') {
        match pair {
            b"sort=size" => by = SortBy::Size,
            b"sort=time" => by = SortBy::Time,
            b"sort=name" => by = SortBy::Name,
            b"order=desc" => desc = true,
            b"order=asc" => desc = false,
            _ => {}
        }
    }
    (by, desc)
}

const RICH_STYLE: &str = "<style>:root{color-scheme:light dark;font-family:system-ui,sans-serif}\
body{max-width:60rem;margin:0 auto;padding:0 1rem}h1{font-size:1.3rem;word-break:break-all}\
ul{list-style:none;padding:0}li{display:flex;flex-wrap:wrap;gap:0 1rem;padding:.3rem 0;border-bottom:1px solid #8883}\
li a{flex:1 1 12rem;overflow-wrap:anywhere}.m{margin-left:auto;white-space:nowrap;opacity:.7;font-variant-numeric:tabular-nums}\
nav a{margin-right:1rem}</style>";

/// The listing with sizes and times, directories first, a parent link and
/// sort links (`--rich-listing`). Still no JavaScript.
pub fn render_rich(dir: &Path, target: &[u8], query: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut entries = read_entries(dir, true)?;
    let (by, desc) = parse_sort(query);
    entries.sort_by(|a, b| {
        let order = match by {
            SortBy::Name => std::cmp::Ordering::Equal,
            SortBy::Size => a.size.cmp(&b.size),
            SortBy::Time => a.mtime.cmp(&b.mtime),
        }
        .then_with(|| a.sort_key.cmp(&b.sort_key));
        let order = if desc { order.reverse() } else { order };
        b.is_dir.cmp(&a.is_dir).then(order)
    });
    let title = title(target);
    out.extend_from_slice(
        b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
    );
    out.extend_from_slice(
        b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
    );
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</title>\n");
    out.extend_from_slice(RICH_STYLE.as_bytes());
    out.extend_from_slice(b"\n</head>\n<body>\n<h1>");
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</h1>\n<nav>Sort by:");
    for (key, column) in [
        ("name", SortBy::Name),
        ("size", SortBy::Size),
        ("time", SortBy::Time),
    ] {
        // The column sorted ascending now links to its descending order.
        let order = if by == column && !desc { "desc" } else { "asc" };
        let _ = write!(out, " <a href=\"?sort={key}&amp;order={order}\">{key}</a>");
    }
    out.extend_from_slice(b"</nav>\n<hr>\n<ul>\n");
    let url_path = crate::urlpath::split_target(target).path;
    if url_path != b"/" {
        out.extend_from_slice(
            b"<li><a href=\"../\">../</a><span class=\"m\">parent directory</span></li>\n",
        );
    }
    for e in &entries {
        push_item(out, e);
        out.extend_from_slice(b"<span class=\"m\">");
        if e.is_dir {
            out.extend_from_slice("\u{2014}".as_bytes());
        } else {
            push_size(out, e.size);
        }
        out.extend_from_slice(b" \xc2\xb7 ");
        push_time(out, e.mtime);
        out.extend_from_slice(b"</span></li>\n");
    }
    out.extend_from_slice(b"</ul>\n<hr>\n</body>\n</html>\n");
    Ok(())
}

/// `980 B`, `1.5 KiB`, `12.0 MiB`...
fn push_size(out: &mut Vec<u8>, size: u64) {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if size < 1024 {
        let _ = write!(out, "{size} B");
        return;
    }
    // Tenths of the unit, rounded, in integers: float formatting would add
    // tens of KiB to the binary for this one line.
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while size / scale >= 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    let tenths = (u128::from(size) * 10 + u128::from(scale) / 2) / u128::from(scale);
    let _ = write!(out, "{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]);
}

/// `2026-11-21 18:39 UTC`.
fn push_time(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    );
}

/// The entries sorted as Python sorts them: by `name.lower()` of the name
/// decoded with `surrogateescape`, ties kept in directory order.
fn read_entries(dir: &Path, with_meta: bool) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().as_bytes().to_vec();
        let file_type = item.file_type().ok();
        let is_link = file_type.is_some_and(|t| t.is_symlink());
        let meta = if with_meta || is_link || file_type.is_none() {
            fs::metadata(item.path()).ok()
        } else {
            None
        };
        let is_dir = match (file_type, &meta) {
            (Some(t), _) if t.is_dir() => true,
            (_, Some(m)) => m.is_dir(),
            _ => false,
        };
        entries.push(Entry {
            sort_key: sort_key(&name),
            name,
            is_dir,
            is_link,
            size: meta.as_ref().map_or(0, |m| m.len()),
            mtime: meta
                .as_ref()
                .map_or(0, std::os::unix::fs::MetadataExt::mtime),
        });
    }
    entries.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
    Ok(entries)
}

/// Code points of the lower-cased name; an undecodable byte `b` stands for
/// the lone surrogate U+DC00+b, exactly as Python's `surrogateescape` has it.
pub fn sort_key(name: &[u8]) -> Vec<u32> {
    let mut key = Vec::with_capacity(name.len());
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, None),
            Err(e) => {
                // ok: valid_up_to marks a prefix that is valid UTF-8.
                let s = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                (s, Some(rest[e.valid_up_to()]))
            }
        };
        key.extend(valid.chars().flat_map(char::to_lowercase).map(u32::from));
        match bad {
            Some(b) => {
                key.push(0xDC00 + u32::from(b));
                rest = &rest[valid.len() + 1..];
            }
            None => break,
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tinyserve-listing-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn listing_matches_python_format() {
        let dir = tempdir("format");
        fs::write(dir.join("b.txt"), "").unwrap();
        fs::write(dir.join("A&<x>.txt"), "").unwrap();
        fs::write(dir.join("sp ace"), "").unwrap();
        fs::create_dir(dir.join("Sub")).unwrap();
        std::os::unix::fs::symlink("Sub", dir.join("link")).unwrap();
        fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xff")), "").unwrap();
        let mut out = Vec::new();
        render(&dir, b"/d%20x/?q=<1>", &mut out).unwrap();
        let expected = b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>Directory listing for /d x/?q=&lt;1&gt;</title>\n</head>\n<body>\n\
<h1>Directory listing for /d x/?q=&lt;1&gt;</h1>\n<hr>\n<ul>\n\
<li><a href=\"A%26%3Cx%3E.txt\">A&amp;&lt;x&gt;.txt</a></li>\n\
<li><a href=\"b.txt\">b.txt</a></li>\n\
<li><a href=\"bad%ED%B3%BF\">bad\xff</a></li>\n\
<li><a href=\"link/\">link@</a></li>\n\
<li><a href=\"sp%20ace\">sp ace</a></li>\n\
<li><a href=\"Sub/\">Sub/</a></li>\n\
</ul>\n<hr>\n</body>\n</html>\n";
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rich_listing_sorts_and_keeps_pythons_links() {
        let dir = tempdir("rich");
        fs::write(dir.join("big.bin"), vec![0u8; 3000]).unwrap();
        fs::write(dir.join("a&b.txt"), "x").unwrap();
        fs::create_dir(dir.join("zdir")).unwrap();
        let mut out = Vec::new();
        render_rich(&dir, b"/sub/", b"sort=size&order=desc", &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(html.contains("color-scheme:light dark"));
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("<li><a href=\"../\">../</a>"));
        // Directories first, then by size, largest first.
        let pos = |s: &str| html.find(s).unwrap();
        assert!(pos("zdir/") < pos("big.bin") && pos("big.bin") < pos("a&amp;b.txt"));
        assert!(html.contains("<li><a href=\"a%26b.txt\">a&amp;b.txt</a>"));
        assert!(html.contains("2.9 KiB"));
        assert!(!html.contains("<script"));
        let mut root = Vec::new();
        render_rich(&dir, b"/", b"", &mut root).unwrap();
        assert!(!String::from_utf8(root).unwrap().contains("href=\"../\""));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_times_and_sort_queries() {
        let mut out = Vec::new();
        push_size(&mut out, 999);
        out.push(b'|');
        push_size(&mut out, 1536);
        out.push(b'|');
        push_size(&mut out, 5 << 30);
        out.push(b'|');
        push_time(&mut out, 1_795_286_369);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "999 B|1.5 KiB|5.0 GiB|2026-11-21 18:39 UTC"
        );
        assert_eq!(parse_sort(b"sort=time&order=desc"), (SortBy::Time, true));
        assert_eq!(parse_sort(b"junk"), (SortBy::Name, false));
    }

    #[test]
    fn unreadable_directory_is_an_error() {
        let mut out = Vec::new();
        assert!(render(Path::new("/nonexistent/dir"), b"/", &mut out).is_err());
    }

    #[test]
    fn sort_key_lowercases_and_escapes() {
        assert_eq!(sort_key(b"Ab"), vec![u32::from('a'), u32::from('b')]);
        assert_eq!(sort_key(b"\xff"), vec![0xDCFF]);
    }
}
