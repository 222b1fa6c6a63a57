//! Directory listings in the HTML Python 3.13's `list_directory` writes.

use crate::escape::push_html;
use crate::urlpath::{display_path, push_quoted};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One directory entry, with what the listing needs to know about it.
struct Entry {
    name: Vec<u8>,
    sort_key: Vec<u32>,
    is_dir: bool,
    is_link: bool,
}

/// Appends the listing of `dir`, requested as `target`, to `out`.
/// An unreadable directory is an error, which Python answers with
/// 404 "No permission to list directory".
pub fn render(dir: &Path, target: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let entries = read_entries(dir)?;
    let mut title = b"Directory listing for ".to_vec();
    push_html(&mut title, &display_path(target));

    out.extend_from_slice(
        b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
    );
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</title>\n</head>\n<body>\n<h1>");
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</h1>\n<hr>\n<ul>\n");
    for e in &entries {
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
        out.extend_from_slice(b"</a></li>\n");
    }
    out.extend_from_slice(b"</ul>\n<hr>\n</body>\n</html>\n");
    Ok(())
}

/// The entries sorted as Python sorts them: by `name.lower()` of the name
/// decoded with `surrogateescape`, ties kept in directory order.
fn read_entries(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().as_bytes().to_vec();
        let file_type = item.file_type().ok();
        let is_link = file_type.is_some_and(|t| t.is_symlink());
        let is_dir = match file_type {
            Some(t) if t.is_dir() => true,
            // Only a link (or a file system without d_type) needs a stat.
            Some(t) if !t.is_symlink() => false,
            _ => fs::metadata(item.path()).is_ok_and(|m| m.is_dir()),
        };
        entries.push(Entry {
            sort_key: sort_key(&name),
            name,
            is_dir,
            is_link,
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
