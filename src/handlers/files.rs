//! Static files and directories: Python's `SimpleHTTPRequestHandler`, as
//! a [`Handler`], with Range, validators, pre-compressed twins and
//! symlink containment beside Python's answers.
//!
//! ```no_run
//! use tinyserve::{FileHandler, Server};
//!
//! let files = FileHandler::new(".")?.rich_listing(true);
//! Server::bind("127.0.0.1:8000", files)?.serve_forever()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::handler::{BodySource, Exchange, Handler, Poll};
use crate::handlers::cache::{Entry, FileFacts};
use crate::handlers::listing;
use crate::proto::conditional::{self, Precondition};
use crate::proto::mime;
use crate::proto::range::{self, ByteRange, RangeSpec};
use crate::proto::request;
use crate::proto::response::push_error_page;
use crate::proto::status;
use crate::proto::urlpath::{self, split_target};
use crate::server::Services;
use crate::server::sys::{self, Found};
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

const INDEX_PAGES: [&[u8]; 2] = [b"index.html", b"index.htm"];

/// Serves a directory: files, `index.html`, listings in Python's HTML.
/// GET and HEAD; any other method is Python's 501.
pub struct FileHandler {
    /// The served directory, open, so every lookup is relative to it.
    root: File,
    root_path: PathBuf,
    contain_symlinks: bool,
    rich_listing: bool,
}

impl FileHandler {
    /// Serves `dir` (which must be a readable directory).
    pub fn new(dir: impl AsRef<Path>) -> io::Result<FileHandler> {
        let root_path = dir.as_ref().canonicalize()?;
        let root = File::open(&root_path)?;
        if !root.metadata()?.is_dir() {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        std::fs::read_dir(&root_path)?;
        Ok(FileHandler {
            root,
            root_path,
            contain_symlinks: false,
            rich_listing: false,
        })
    }

    /// Refuse (404) what a symlink leads to outside the directory.
    pub fn contain_symlinks(mut self, yes: bool) -> FileHandler {
        self.contain_symlinks = yes;
        self
    }

    /// Listings with sizes, times and sorting (`?sort=name|size|time`).
    pub fn rich_listing(mut self, yes: bool) -> FileHandler {
        self.rich_listing = yes;
        self
    }

    /// The served directory, symlinks resolved.
    pub fn root(&self) -> &Path {
        &self.root_path
    }
}

impl Handler for FileHandler {
    fn do_get(&self, r: &mut Exchange) {
        self.serve(r);
    }
}

impl FileHandler {
    /// Python's `send_head`, and the answer it leads to.
    pub fn serve(&self, r: &mut Exchange) {
        let mut local = None;
        let services: &mut Services = match r.services.as_deref_mut() {
            Some(s) => s,
            None => local.insert(Services::default()),
        };
        let mut path = std::mem::take(&mut services.path);
        let found = urlpath::translate(r.req().line.target, &mut path);
        self.serve_path(r, &path, found);
        if let Some(s) = r.services.as_deref_mut() {
            s.path = path;
        }
    }

    fn serve_path(&self, r: &mut Exchange, path: &[u8], found: urlpath::Translated) {
        if found.has_nul {
            // Python crashes on this (an uncaught ValueError); no file has a
            // NUL in its name, so the honest answer is 404.
            return not_found(r);
        }
        let now = r.services.as_ref().map(|s| s.now);
        let accept = request::header_joined(r.req().headers, "Accept-Encoding");
        let accept = accept.as_deref();
        if !found.trailing_slash
            && let Some(now) = now
            && let Some(entity) = r
                .services
                .as_deref_mut()
                .and_then(|s| s.cache.as_mut())
                .and_then(|c| c.get_fresh(&self.root, path, now))
                .map(|entry| cached_entity(entry, accept))
        {
            return send_entity(r, &entity);
        }
        let opened = match self.open_with_room(r, path) {
            Ok(opened) => opened,
            Err(e) if sys::is_out_of_descriptors(&e) => return unavailable(r),
            Err(_) => return not_found(r),
        };
        let (file, meta, index_name) = match opened {
            // FIFOs and devices are never served: reading them could block or
            // never end, and opening some of them acts.
            Found::Other => return not_found(r),
            Found::File(_, _) if found.trailing_slash => {
                // A file named with a trailing slash is 404 (Python's issue 17324).
                return not_found(r);
            }
            Found::File(file, meta) => {
                if self.contain_symlinks && !inside_root(&file, &self.root_path) {
                    return not_found(r);
                }
                (file, meta, None)
            }
            Found::Dir { handle, entries } => {
                if self.contain_symlinks && !inside_root(&handle, &self.root_path) {
                    return not_found(r);
                }
                let target = r.req().line.target;
                if split_target(target).path.last() != Some(&b'/') {
                    return redirect_to_slash(r, target);
                }
                let mut cpath = Vec::new();
                match open_index(&handle, &mut cpath) {
                    // The index page is served like any file: the same
                    // containment check (it may be a link out of the root).
                    Some((index, _, _))
                        if self.contain_symlinks && !inside_root(&index, &self.root_path) =>
                    {
                        return not_found(r);
                    }
                    Some((index, index_meta, name)) => (index, index_meta, Some(name)),
                    None => return self.list_directory(r, entries),
                }
            }
        };

        let file = Rc::new(file);
        if index_name.is_none()
            && let Some(now) = now
            && let Some(cache) = r.services.as_deref_mut().and_then(|s| s.cache.as_mut())
        {
            cache.insert(&self.root, &self.root_path, path, &file, now);
            if let Some(entity) = cache.get(path).map(|entry| cached_entity(entry, accept)) {
                return send_entity(r, &entity);
            }
        }
        let content_type = mime::content_type(index_name.unwrap_or(path));
        let twins = self.twin(r, path, index_name, &meta);
        let (facts, encoding) = match twins.chosen {
            Some((facts, coding)) => (facts, Some(coding)),
            None => (FileFacts::from_meta(file, &meta), None),
        };
        let entity = Entity {
            facts,
            content_type,
            encoding,
            has_twin: twins.exists,
        };
        send_entity(r, &entity)
    }

    /// Opens a path under the root; out of descriptors, makes room by
    /// closing cached files and tries once more.
    fn open_with_room(&self, r: &mut Exchange, path: &[u8]) -> io::Result<Found> {
        let mut cpath = Vec::new();
        match sys::open_checked(&self.root, path, &mut cpath) {
            Err(e) if sys::is_out_of_descriptors(&e) => {
                if let Some(cache) = r.services.as_deref_mut().and_then(|s| s.cache.as_mut()) {
                    cache.shed();
                }
                sys::open_checked(&self.root, path, &mut cpath)
            }
            other => other,
        }
    }

    /// A pre-compressed twin (`file.br`, `file.gz`) the client accepts, sent
    /// in place of the file (with the file's type), and whether any twin
    /// exists.
    fn twin(
        &self,
        r: &Exchange,
        path: &[u8],
        index_name: Option<&[u8]>,
        original: &std::fs::Metadata,
    ) -> Twins {
        let accept = request::header_joined(r.req().headers, "Accept-Encoding");
        let accept = accept.as_deref().unwrap_or(b"");
        let mut twins = Twins {
            chosen: None,
            exists: false,
        };
        let mut twin = Vec::with_capacity(path.len() + 16);
        let mut cpath = Vec::new();
        for (coding, suffix) in [("br", &b".br"[..]), ("gzip", b".gz")] {
            twin.clear();
            twin.extend_from_slice(path);
            if let Some(name) = index_name {
                if !twin.is_empty() {
                    twin.push(b'/');
                }
                twin.extend_from_slice(name);
            }
            twin.extend_from_slice(suffix);
            if !sys::is_regular_file_at(&self.root, &twin, &mut cpath) {
                continue;
            }
            let Some(st) = sys::stat_at(&self.root, &twin, false, &mut cpath) else {
                continue;
            };
            let twin_time = (
                st.st_mtime,
                st.st_mtime_nsec,
                u64::try_from(st.st_size).unwrap_or(0),
            );
            use std::os::unix::fs::MetadataExt;
            let original_time = (original.mtime(), original.mtime_nsec(), original.len());
            if !twin_serves_for(twin_time, original_time) {
                continue;
            }
            twins.exists = true;
            if twins.chosen.is_some() || !accepts(accept, coding) {
                continue;
            }
            if let Ok(Found::File(f, m)) = sys::open_checked(&self.root, &twin, &mut cpath)
                && (!self.contain_symlinks || inside_root(&f, &self.root_path))
            {
                twins.chosen = Some((FileFacts::from_meta(Rc::new(f), &m), coding));
            }
        }
        twins
    }

    /// A directory listing: read in steps and sent as the socket drains
    /// (see `listing`), shared with every other connection listing it
    /// meanwhile. On a worker thread (a threaded server), read at once.
    fn list_directory(&self, r: &mut Exchange, dir: Option<File>) {
        let Some(dir) = dir else {
            return no_permission(r);
        };
        let style = listing::Style {
            rich: self.rich_listing,
            contain: self.contain_symlinks.then(|| self.root_path.clone()),
        };
        let target = r.req().line.target.to_vec();
        let Some(services) = r.services.as_deref_mut() else {
            let mut page = Vec::new();
            return match listing::render_path_file(dir, &target, style, &mut page) {
                Ok(()) => {
                    r.send_response(200);
                    r.send_header("Content-type", "text/html; charset=utf-8");
                    r.send_header_num("Content-Length", page.len() as u64);
                    r.end_headers();
                    r.write(&page);
                }
                Err(failure) => listing_failed(r, failure),
            };
        };
        let Ok(build) = services.listings.get(dir, &style, services.now) else {
            return r.send_error_with(
                503,
                Some("Server busy: too many large listings at once"),
                None,
                &[("Retry-After", b"1")],
            );
        };
        // Wait for the shared build, then the head, then the page a piece
        // at a time.
        r.poll(move |r| {
            let Some(now) = r.services.as_ref().map(|s| s.now) else {
                return Poll::Ready;
            };
            let listing = match build.borrow_mut().step(now) {
                listing::Progress::Working => return Poll::Pending,
                listing::Progress::Ready(listing) => Rc::clone(listing),
                listing::Progress::Failed(failure) => {
                    listing_failed(r, failure);
                    return Poll::Ready;
                }
            };
            let page = listing::Page::new(listing, &target);
            r.send_response(200);
            r.send_header("Content-type", "text/html; charset=utf-8");
            r.send_header_num("Content-Length", page.len());
            r.end_headers();
            r.stream_local(Box::new(PageSource(page)));
            Poll::Ready
        });
    }
}

/// A listing page as a body, as the socket takes it.
struct PageSource(listing::Page);

impl BodySource for PageSource {
    fn fill(&mut self, buf: &mut Vec<u8>, max: usize) -> bool {
        !self.0.fill(buf, max)
    }
}

fn listing_failed(r: &mut Exchange, failure: listing::Failure) {
    match failure {
        listing::Failure::Unreadable => no_permission(r),
        listing::Failure::TooLarge => r.send_error(500, Some("Directory too large to list"), None),
        listing::Failure::OverBudget => r.send_error_with(
            503,
            Some("Server busy: too many large listings at once"),
            None,
            &[("Retry-After", b"1")],
        ),
    }
}

fn no_permission(r: &mut Exchange) {
    r.send_error(404, Some("No permission to list directory"), None);
}

/// 503 with `Retry-After`: no descriptor could be had for the file, which
/// exists or may. Never 404 for a file that is there.
fn unavailable(r: &mut Exchange) {
    r.send_error_with(
        503,
        Some("Server busy: out of file descriptors"),
        None,
        &[("Retry-After", b"1")],
    );
}

/// A twin stands in for its file only if it is no older (an old `.gz`
/// would give gzip clients old content) and not empty unless the file is
/// (an empty `.gz` is no gzip stream at all). Each is `(mtime, mtime_nsec,
/// len)`.
pub fn twin_serves_for(twin: (i64, i64, u64), original: (i64, i64, u64)) -> bool {
    (twin.0, twin.1) >= (original.0, original.1) && (twin.2 > 0 || original.2 == 0)
}

fn not_found(r: &mut Exchange) {
    r.send_error(404, Some("File not found"), None);
}

/// The entity a cache entry offers this request: a pre-compressed twin
/// when the client accepts it, else the file itself.
fn cached_entity(entry: &Entry, accept: Option<&[u8]>) -> Entity {
    let accept = accept.unwrap_or(b"");
    let (chosen, encoding) = match (&entry.br, &entry.gzip) {
        (Some(br), _) if accepts(accept, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(accept, "gzip") => (gz, Some("gzip")),
        _ => (&entry.identity, None),
    };
    Entity {
        facts: chosen.clone(),
        content_type: entry.content_type,
        encoding,
        has_twin: entry.br.is_some() || entry.gzip.is_some(),
    }
}

/// What [`FileHandler::twin`] found beside a file.
struct Twins {
    /// The twin to send in place of the file, and its encoding.
    chosen: Option<(FileFacts, &'static str)>,
    /// A twin exists, accepted or not: the answer depends on
    /// `Accept-Encoding`, so it says `Vary`.
    exists: bool,
}

/// A file ready to be sent, with what the response says about it.
pub struct Entity {
    pub facts: FileFacts,
    pub content_type: &'static str,
    /// `Content-Encoding` of a pre-compressed twin.
    pub encoding: Option<&'static str>,
    /// The file has a pre-compressed twin: every answer from it depends on
    /// `Accept-Encoding` (RFC 9110 12.5.5).
    pub has_twin: bool,
}

impl Entity {
    /// The headers that say what the bytes are, on every answer built from
    /// this entity (whole, one range or several).
    fn representation_headers(&self, r: &mut Exchange) {
        if let Some(coding) = self.encoding {
            r.send_header("Content-Encoding", coding);
        }
        if self.has_twin || self.encoding.is_some() {
            r.send_header("Vary", "Accept-Encoding");
        }
    }
}

/// Most bytes a multi-range answer gathers in memory; a larger one is
/// answered with the whole file (RFC 9110 allows ignoring Range).
const MULTIPART_MAX: u64 = 1 << 20;

/// Answers with a file: preconditions (RFC 9110 13.2.2, with Python's
/// reading of If-Modified-Since), then Range, then the head and body.
pub fn send_entity(r: &mut Exchange, entity: &Entity) {
    let v = &entity.facts.validators;
    let headers = r.req().headers;
    let inm = request::header_lines(headers, "If-None-Match");
    let no_inm = inm.is_none();
    let verdict = conditional::evaluate_lines(
        true,
        request::header_lines(headers, "If-Match"),
        request::header_once(headers, "If-Unmodified-Since"),
        inm,
        None,
        v,
    );
    let python_ims = no_inm
        && request::header_once(headers, "If-Modified-Since")
            .and_then(parse_utc_date)
            .is_some_and(|since| v.last_modified <= since);
    match verdict {
        Precondition::Failed => return r.send_error(412, None, None),
        Precondition::NotModified => return not_modified(r, entity),
        Precondition::Proceed if python_ims => return not_modified(r, entity),
        Precondition::Proceed => {}
    }

    let len = entity.facts.len;
    let mut spec = RangeSpec::Whole;
    if !r.is_head()
        && let Some(range) = request::header(headers, "Range")
        && request::header(headers, "If-Range").is_none_or(|ir| conditional::if_range_allows(ir, v))
    {
        spec = range::parse(range, len);
    }
    let (status, start, count) = match spec {
        RangeSpec::Whole => (200, 0, len),
        RangeSpec::Single {
            start,
            end_inclusive,
        } => (206, start, end_inclusive - start + 1),
        RangeSpec::Unsatisfiable => return unsatisfiable(r, entity, len),
        RangeSpec::Multi(set) => {
            let ranges = set.as_slice();
            let total =
                range::multipart_length(ranges, range::BOUNDARY_LEN, entity.content_type, len);
            if total <= MULTIPART_MAX && multipart(r, entity, ranges, total) {
                return;
            }
            (200, 0, len)
        }
    };
    r.send_response(status);
    r.send_header("Content-type", entity.content_type);
    entity.representation_headers(r);
    r.send_header_num("Content-Length", count);
    if status == 206 {
        let mut value = Vec::with_capacity(64);
        range::write_content_range(&mut value, start, start + count - 1, len);
        r.send_header_bytes("Content-Range", &value);
    }
    send_last_modified(r, &entity.facts);
    r.send_header_bytes("ETag", v.etag.as_bytes());
    r.send_header("Accept-Ranges", "bytes");
    r.end_headers();
    match &entity.facts.content {
        _ if r.is_head() || count == 0 => {}
        Some(bytes) if bytes.len() as u64 >= start + count => {
            // One send for head and body: the bytes follow the head.
            r.write(&bytes[start as usize..(start + count) as usize]);
        }
        _ => r.send_shared_file_body(Rc::clone(&entity.facts.file), start, count),
    }
}

/// `Last-Modified`, but never later than now: a file whose time is in the
/// future (a skewed clock, or a year past 9999) is said to have changed
/// now (RFC 9110 8.8.2.1).
fn send_last_modified(r: &mut Exchange, facts: &FileFacts) {
    if facts.validators.last_modified > r.now() {
        let now = r.date_time_string().as_bytes().to_vec();
        r.send_header_bytes("Last-Modified", &now);
    } else {
        r.send_header_bytes("Last-Modified", &facts.last_modified);
    }
}

fn not_modified(r: &mut Exchange, entity: &Entity) {
    r.send_response(304);
    r.send_header_bytes("ETag", entity.facts.validators.etag.as_bytes());
    // A 304 carries the Vary the 200 would (RFC 9110 15.4.5), or a cache
    // keyed on it would hand the compressed tag to any client.
    if entity.has_twin || entity.encoding.is_some() {
        r.send_header("Vary", "Accept-Encoding");
    }
    r.end_headers();
}

/// 416 with `Content-Range: bytes */len` of the representation chosen
/// (and so the `Vary` that says how it was chosen); the connection stays
/// open.
fn unsatisfiable(r: &mut Exchange, entity: &Entity, len: u64) {
    let mut page = Vec::new();
    push_error_page(
        &mut page,
        416,
        status::phrase(416),
        status::explanation(416),
    );
    let mut value = Vec::with_capacity(32);
    range::write_unsatisfied(&mut value, len);
    r.send_response(416);
    r.send_header_bytes("Content-Range", &value);
    if entity.has_twin || entity.encoding.is_some() {
        r.send_header("Vary", "Accept-Encoding");
    }
    r.send_header("Content-Type", "text/html;charset=utf-8");
    r.send_header_num("Content-Length", page.len() as u64);
    r.end_headers();
    r.write(&page);
}

/// A `multipart/byteranges` answer, built in memory (it is small). Its
/// boundary is random per response and checked against the parts, so a
/// file's contents cannot end a part early (RFC 2046 5.1.1). False when it
/// could not be made (the whole file is sent instead).
fn multipart(r: &mut Exchange, entity: &Entity, ranges: &[ByteRange], total: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(total) = usize::try_from(total) else {
        return false;
    };
    let mut parts = Vec::with_capacity(ranges.len());
    let mut data = Vec::with_capacity(total);
    for part in ranges {
        let at = data.len();
        let Ok(n) = usize::try_from(part.len()) else {
            return false;
        };
        data.resize(at + n, 0);
        if entity
            .facts
            .file
            .read_exact_at(&mut data[at..], part.start)
            .is_err()
        {
            return false;
        }
        parts.push(at..data.len());
    }
    let Some(boundary) = (0..4)
        .map(|_| range::random_boundary())
        .find(|b| memchr::memmem::find(&data, b).is_none())
    else {
        return false;
    };
    let mut body = Vec::with_capacity(total);
    for (part, at) in ranges.iter().zip(parts) {
        range::part_header(
            &mut body,
            &boundary,
            entity.content_type,
            part.start,
            part.end_inclusive,
            entity.facts.len,
        );
        body.extend_from_slice(&data[at]);
    }
    range::closing(&mut body, &boundary);
    let mut content_type = Vec::with_capacity(64);
    range::write_multipart_content_type(&mut content_type, &boundary);
    r.send_response(206);
    r.send_header_bytes("Content-Type", &content_type);
    // The parts are bytes of the twin when a twin is sent: say so, as the
    // single-range and whole answers do (RFC 9110 8.4, 14.6).
    entity.representation_headers(r);
    r.send_header_num("Content-Length", body.len() as u64);
    send_last_modified(r, &entity.facts);
    r.send_header_bytes("ETag", entity.facts.validators.etag.as_bytes());
    r.send_header("Accept-Ranges", "bytes");
    r.end_headers();
    r.write(&body);
    true
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
fn inside_root(file: &File, root: &Path) -> bool {
    sys::real_path(file).is_some_and(|real| real.starts_with(root))
}

/// `index.html`, then `index.htm`, if it is a regular file.
fn open_index(dir: &File, cpath: &mut Vec<u8>) -> Option<(File, Metadata, &'static [u8])> {
    INDEX_PAGES
        .iter()
        .find_map(|&name| match sys::open_checked(dir, name, cpath) {
            Ok(Found::File(file, meta)) => Some((file, meta, name)),
            _ => None,
        })
}

/// 301 to the same target with a slash after the path, query and fragment
/// kept (`urlunsplit` drops an empty `?` or `#`).
fn redirect_to_slash(r: &mut Exchange, target: &[u8]) {
    let url = split_target(target);
    let mut location = Vec::with_capacity(target.len() + 1);
    push_local_path(&mut location, url.path);
    location.push(b'/');
    if !url.query.is_empty() {
        location.push(b'?');
        push_controls_encoded(&mut location, url.query);
    }
    if !url.fragment.is_empty() {
        location.push(b'#');
        push_controls_encoded(&mut location, url.fragment);
    }
    r.send_response(301);
    r.send_header_bytes("Location", &location);
    r.send_header("Content-Length", "0");
    r.end_headers();
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
            push_percent(out, b);
        } else {
            push_controls_encoded(out, &[b]);
        }
    }
}

/// Control bytes (NUL, CR, ESC...) never reach a header: percent-encoded,
/// as a browser would have sent them.
fn push_controls_encoded(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b < 0x20 || b == 0x7f {
            push_percent(out, b);
        } else {
            out.push(b);
        }
    }
}

fn push_percent(out: &mut Vec<u8>, b: u8) {
    out.push(b'%');
    out.push(b"0123456789ABCDEF"[usize::from(b >> 4)]);
    out.push(b"0123456789ABCDEF"[usize::from(b & 0xf)]);
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
    if hms.next().is_some() {
        return None;
    }
    let zone = words.get(4).copied().unwrap_or("");
    let utc = match zone.as_bytes().first() {
        Some(b'+' | b'-') => zone[1..].bytes().all(|b| b == b'0'),
        _ => !["EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"]
            .contains(&zone.to_ascii_uppercase().as_str()),
    };
    // What Python's `datetime` refuses (ValueError), Python then ignores:
    // no 31 February, no leap seconds, years 1 to 9999 only.
    if !utc
        || !(1..=9999).contains(&year)
        || day == 0
        || day > days_in_month(year, mon)
        || h > 23
        || m > 59
        || sec > 59
    {
        return None;
    }
    Some(days_from_civil(year, mon, day)? * 86400 + h * 3600 + m * 60 + sec)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
            (b"/a\x00b\r\x7f", b"/a%00b%0D%7F"),
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
        for impossible in [
            "31 Feb 2099 00:00:00 GMT",
            "Sat, 29 Feb 2098 00:00:00 GMT",
            "Thu, 01 Jan 2099 00:00:61 GMT",
            "Thu, 01 Jan 2099 00:00:60 GMT",
            "Thu, 01 Jan 2099 24:00:00 GMT",
            "Thu, 01 Jan 123456789012345678 00:00:00 GMT",
            "Thu, 01 Jan 18446744073709551615 00:00:00 GMT",
            "Thu, 01 Jan 10000 00:00:00 GMT",
            "Thu, 01 Jan 2099 00:00:00:00 GMT",
        ] {
            assert_eq!(parse_utc_date(impossible.as_bytes()), None, "{impossible}");
        }
        assert!(parse_utc_date(b"Tue, 29 Feb 2000 00:00:00 GMT").is_some());
    }
}
