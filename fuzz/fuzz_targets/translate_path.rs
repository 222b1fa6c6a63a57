//! Request targets to file system paths: whatever the target, the path
//! `urlpath::translate` gives stays inside the served directory.
//!
//! Also: `display_path` and `push_quoted` never panic, and a file name
//! quoted for a listing link translates back to that very name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::proto::urlpath;

const ROOT: &[u8] = b"/srv/www/root";

/// Joins `rel` to `root` and resolves `.`, `..` and empty segments the way
/// the kernel would without symlinks; `None` if `..` climbs above `/`.
fn lexical_join(root: &[u8], rel: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for seg in root.split(|&b| b == b'/').chain(rel.split(|&b| b == b'/')) {
        match seg {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            s => parts.push(s.to_vec()),
        }
    }
    Some(parts)
}

fn check_translated(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let t = urlpath::translate(target, &mut out);
    assert!(!out.starts_with(b"/"), "absolute result {out:?}");
    if !out.is_empty() {
        for seg in out.split(|&b| b == b'/') {
            assert!(!seg.is_empty(), "empty segment in {out:?}");
            assert!(seg != b"." && seg != b"..", "dot segment in {out:?}");
        }
    }
    assert_eq!(t.has_nul, out.contains(&0));
    let path = urlpath::split_target(target).path;
    assert_eq!(t.trailing_slash, path.ends_with(b"/"));

    let root = lexical_join(ROOT, b"").unwrap();
    let joined = lexical_join(ROOT, &out).expect("climbed above /");
    assert!(joined.starts_with(&root), "{out:?} leaves the root");
    assert_eq!(&joined[root.len()..].join(&b'/'), &out);

    // Translating is idempotent on a result that has nothing left to decode.
    if !out.iter().any(|b| b"%?#".contains(b)) && std::str::from_utf8(&out).is_ok() {
        let mut again = b"/".to_vec();
        again.extend_from_slice(&out);
        let mut out2 = Vec::new();
        urlpath::translate(&again, &mut out2);
        assert_eq!(out2, out, "translate is not idempotent");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    check_translated(data);
    // The same bytes as a segment under a directory, and behind `..`s.
    let mut nested = b"/a/b/".to_vec();
    nested.extend_from_slice(data);
    check_translated(&nested);

    // Not always UTF-8: a surrogate escape (`%ED%B3%BF`) stands for a raw
    // byte, as in Python's listing titles.
    let shown = urlpath::display_path(data);
    assert!(shown.len() <= data.len() * 3);

    // A listing links a name as push_quoted writes it; following the link
    // must name the same file.
    let mut link = b"/".to_vec();
    urlpath::push_quoted(&mut link, data);
    assert!(
        link[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-~/%".contains(&b)),
        "unquoted byte in {link:?}"
    );
    let name_like = !data.is_empty() && !data.contains(&b'/') && data != b"." && data != b"..";
    if name_like {
        let out = check_translated(&link);
        assert_eq!(out, data, "link {link:?} does not lead back to the name");
    }
});
