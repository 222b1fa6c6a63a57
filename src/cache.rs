//! A cache of open files (and the bytes of small ones), kept fresh by
//! inotify in the same poll, so a keep-alive request for a small file costs
//! one `read` and one `send`: no `open`, `stat` or `close`.
//!
//! Freshness: every directory from the served root down to a cached file is
//! watched; any event naming an entry (or a directory above it, or its
//! pre-compressed twin) drops it at once, before the next request is read.
//! Only files reached without any symlink are cached, so an event on a
//! link's target cannot go unseen. What inotify cannot see is not cached
//! around either: a file changed through a hard link in an unwatched
//! directory, or written through `mmap`, may be served stale until evicted.

use crate::conditional::Validators;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::rc::Rc;

/// Files up to this size are kept in memory and sent from there.
pub const MAX_CONTENT: u64 = 16 * 1024;
/// Bounds: when either is reached the cache starts over, empty.
const MAX_ENTRIES: usize = 1024;
const MAX_BYTES: usize = 1 << 20;

/// What a response needs to know about an open file; the bytes too when
/// the file is small and cached.
#[derive(Clone)]
pub struct FileFacts {
    pub file: Rc<File>,
    pub content: Option<Rc<[u8]>>,
    pub len: u64,
    pub validators: Validators,
    /// `Last-Modified`, formatted once.
    pub last_modified: [u8; 29],
}

impl FileFacts {
    pub fn from_meta(file: Rc<File>, meta: &std::fs::Metadata) -> FileFacts {
        let validators = Validators::new(meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec());
        FileFacts {
            file,
            content: None,
            len: meta.len(),
            last_modified: crate::clock::http_date(validators.last_modified),
            validators,
        }
    }
}

pub struct Entry {
    pub content_type: &'static str,
    pub identity: FileFacts,
    /// `file.br` and `file.gz`, when they exist.
    pub br: Option<FileFacts>,
    pub gzip: Option<FileFacts>,
}

/// A fast hash for the cache's keys (the FxHash mix). Keys are names of
/// files that exist, never chosen by a client, so no DoS-resistant hash is
/// needed; SipHash cost more than the rest of the lookup.
#[derive(Default)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = mix(self.0, u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.0 = mix(self.0, u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type PathMap<V> = HashMap<Box<[u8]>, V, std::hash::BuildHasherDefault<PathHasher>>;

impl Entry {
    /// Bytes of file content this entry holds in memory.
    fn content_bytes(&self) -> usize {
        [Some(&self.identity), self.br.as_ref(), self.gzip.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|f| f.content.as_ref().map(|b| b.len()))
            .sum()
    }
}

pub struct FileCache {
    inotify: OwnedFd,
    entries: PathMap<Entry>,
    /// Watch descriptor to the directory (relative to the root) it watches.
    watches: HashMap<i32, Box<[u8]>>,
    watched: PathMap<i32>,
    bytes: usize,
}

const EVENTS: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

impl FileCache {
    pub fn new() -> io::Result<FileCache> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileCache {
            // SAFETY: a fresh descriptor owned from here on.
            inotify: unsafe { OwnedFd::from_raw_fd(fd) },
            entries: PathMap::default(),
            watches: HashMap::new(),
            watched: PathMap::default(),
            bytes: 0,
        })
    }

    /// The descriptor to register in the poll.
    pub fn fd(&self) -> i32 {
        self.inotify.as_raw_fd()
    }

    pub fn get(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// Caches the file at `rel` (already open as `file`), if it qualifies:
    /// a regular file reached without symlinks, in watched directories.
    pub fn insert(&mut self, root: &Path, rel: &[u8], file: &Rc<File>) {
        if rel.is_empty() || self.entries.contains_key(rel) {
            return;
        }
        let full = root.join(std::ffi::OsStr::from_bytes(rel));
        let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
            return;
        };
        if real != full {
            return; // reached through a symlink: its target is not watched
        }
        // Watch first, read second: a change after this point is seen.
        if !self.watch_path(root, rel) {
            return;
        }
        let Some(identity) = cached_file(Rc::clone(file)) else {
            return;
        };
        let twin = |suffix: &str| {
            let mut name = full.clone().into_os_string();
            name.push(suffix);
            let f = File::open(&name).ok()?;
            let meta = f.metadata().ok()?;
            let real = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
            (meta.is_file() && real.as_os_str() == name).then_some(())?;
            cached_file(Rc::new(f))
        };
        let entry = Entry {
            content_type: crate::mime::content_type(rel),
            br: twin(".br"),
            gzip: twin(".gz"),
            identity,
        };
        let size = entry.content_bytes();
        if self.entries.len() >= MAX_ENTRIES || self.bytes + size > MAX_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        self.entries.insert(rel.into(), entry);
    }

    /// Watches every directory from the root to the one holding `rel`.
    fn watch_path(&mut self, root: &Path, rel: &[u8]) -> bool {
        let dir_ends = std::iter::once(0).chain(memchr::memchr_iter(b'/', rel));
        for end in dir_ends {
            let dir = &rel[..end];
            if self.watched.contains_key(dir) {
                continue;
            }
            let mut path = root.as_os_str().as_bytes().to_vec();
            if !dir.is_empty() {
                path.push(b'/');
                path.extend_from_slice(dir);
            }
            path.push(0);
            let mask = EVENTS | libc::IN_ONLYDIR;
            // SAFETY: `path` is NUL-terminated and outlives the call.
            let wd = unsafe {
                libc::inotify_add_watch(self.inotify.as_raw_fd(), path.as_ptr().cast(), mask)
            };
            if wd < 0 {
                return false;
            }
            self.watches.insert(wd, dir.into());
            self.watched.insert(dir.into(), wd);
        }
        true
    }

    /// Reads pending inotify events and drops what they name. Returns how
    /// many entries were dropped.
    pub fn on_events(&mut self) -> usize {
        let mut dropped = 0;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n =
                unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return dropped;
            }
            let mut pos = 0;
            let n = n as usize;
            let header = size_of::<libc::inotify_event>();
            while pos + header <= n {
                // SAFETY: the kernel wrote a whole event header at `pos`;
                // read_unaligned copes with the byte buffer's alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[pos..].as_ptr().cast()) };
                let name_start = pos + header;
                let name_end = (name_start + ev.len as usize).min(n);
                let raw = &buf[name_start..name_end];
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                dropped += self.on_event(ev.wd, ev.mask, name);
                pos = name_end;
            }
        }
    }

    fn on_event(&mut self, wd: i32, mask: u32, name: &[u8]) -> usize {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            let n = self.entries.len();
            self.entries.clear();
            self.bytes = 0;
            return n;
        }
        let Some(dir) = self.watches.get(&wd).cloned() else {
            return 0;
        };
        if mask & libc::IN_IGNORED != 0 {
            self.watches.remove(&wd);
            self.watched.remove(&dir);
        }
        let mut target = dir.to_vec();
        if !name.is_empty() {
            if !target.is_empty() {
                target.push(b'/');
            }
            target.extend_from_slice(name);
        }
        let mut dropped = self.drop_under(&target);
        for suffix in [&b".gz"[..], b".br"] {
            if let Some(original) = target.strip_suffix(suffix) {
                dropped += self.drop_under(original);
            }
        }
        dropped
    }

    /// Drops `path` and everything below it.
    fn drop_under(&mut self, path: &[u8]) -> usize {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|key, entry| {
            let hit = path.is_empty()
                || **key == *path
                || (key.starts_with(path) && key.get(path.len()) == Some(&b'/'));
            if hit {
                freed += entry.content_bytes();
            }
            !hit
        });
        self.bytes -= freed.min(self.bytes);
        before - self.entries.len()
    }
}

/// The facts the response needs about an open regular file, with its bytes
/// when it is small.
fn cached_file(file: Rc<File>) -> Option<FileFacts> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let content = if len <= MAX_CONTENT {
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, 0).ok()?;
        Some(Rc::from(bytes.into_boxed_slice()))
    } else {
        None
    };
    Some(FileFacts {
        content,
        ..FileFacts::from_meta(file, &meta)
    })
}
