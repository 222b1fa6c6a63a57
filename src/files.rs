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

    // The name whose extension gives the content type.
    let mut type_name: &[u8] = &scratch.path;
    if meta.is_dir() {
        if split_target(target).path.last() != Some(&b'/') {
            return redirect_to_slash(ctx, target, out);
        }
        match open_index(&file, &mut scratch.cpath) {
            Some((index, index_meta, name)) => (file, meta, type_name) = (index, index_meta, name),
            None => return list_directory(ctx, target, &scratch.path, out),
        }
    } else if found.trailing_slash || !meta.is_file() {
        // A file named with a trailing slash is 404 (Python's issue 17324).
        // FIFOs and devices are never served: reading them could block or
        // never end.
        return not_found(ctx, out);
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
    head.header("Content-type", mime::content_type(type_name).as_bytes());
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
    let Some(since) = req
        .header("If-Modified-Since")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    else {
        return false;
    };
    let since = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u64::try_from(meta.mtime()).is_ok_and(|m| m <= since) || meta.mtime() < 0
}

fn http_date(meta: &Metadata) -> Vec<u8> {
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).into_bytes()
}
