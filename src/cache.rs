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

/// What a watch descriptor stands for.
enum Watch {
    /// A directory (relative to the root): names created, deleted or moved
    /// in it. Writes to files in it do not wake us (a log file being
    /// appended next to the site costs nothing).
    Dir(Box<[u8]>),
    /// The inode of cached files (their keys; hard links share an inode):
    /// their content or attributes changed.
    File(Vec<Box<[u8]>>),
}

pub struct FileCache {
    inotify: OwnedFd,
    entries: PathMap<Entry>,
    watches: HashMap<i32, Watch>,
    dirs: PathMap<i32>,
    bytes: usize,
}

const DIR_EVENTS: u32 = libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;
const FILE_EVENTS: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// Event buffers read per wake-up; the rest waits for the next turn of the
/// loop, so a storm of events cannot keep requests waiting.
const READS_PER_WAKE: usize = 16;

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
            dirs: PathMap::default(),
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
    /// a regular file reached without symlinks, its directories and itself
    /// (and its twins) watched.
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
        if self.entries.len() >= MAX_ENTRIES || self.bytes >= MAX_BYTES {
            self.clear();
        }
        // Watch first, read second: a change after this point is seen.
        if !self.watch_dirs(root, rel) || !self.watch_file(&full, rel) {
            return;
        }
        let Some(identity) = cached_file(Rc::clone(file)) else {
            return;
        };
        let mut twin = |suffix: &str| {
            let mut name = full.clone().into_os_string();
            name.push(suffix);
            let f = File::open(&name).ok()?;
            let meta = f.metadata().ok()?;
            let real = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
            (meta.is_file() && real.as_os_str() == name).then_some(())?;
            self.watch_file(Path::new(&name), rel).then_some(())?;
            cached_file(Rc::new(f))
        };
        let entry = Entry {
            content_type: crate::mime::content_type(rel),
            br: twin(".br"),
            gzip: twin(".gz"),
            identity,
        };
        self.bytes += entry.content_bytes();
        self.entries.insert(rel.into(), entry);
    }

    fn add_watch(&self, path: &Path, mask: u32) -> Option<i32> {
        let mut c = path.as_os_str().as_bytes().to_vec();
        c.push(0);
        // SAFETY: `c` is NUL-terminated and outlives the call.
        let wd =
            unsafe { libc::inotify_add_watch(self.inotify.as_raw_fd(), c.as_ptr().cast(), mask) };
        (wd >= 0).then_some(wd)
    }

    /// Watches every directory from the root to the one holding `rel`.
    fn watch_dirs(&mut self, root: &Path, rel: &[u8]) -> bool {
        let dir_ends = std::iter::once(0).chain(memchr::memchr_iter(b'/', rel));
        for end in dir_ends {
            let dir = &rel[..end];
            if self.dirs.contains_key(dir) {
                continue;
            }
            let Some(wd) = self.add_watch(&root.join(std::ffi::OsStr::from_bytes(dir)), DIR_EVENTS)
            else {
                return false;
            };
            self.watches.insert(wd, Watch::Dir(dir.into()));
            self.dirs.insert(dir.into(), wd);
        }
        true
    }

    /// Watches the file at `path` on behalf of the entry `key`.
    fn watch_file(&mut self, path: &Path, key: &[u8]) -> bool {
        let Some(wd) = self.add_watch(path, FILE_EVENTS) else {
            return false;
        };
        match self
            .watches
            .entry(wd)
            .or_insert_with(|| Watch::File(Vec::new()))
        {
            Watch::File(keys) if !keys.iter().any(|k| **k == *key) => keys.push(key.into()),
            _ => {}
        }
        true
    }

    /// Reads pending inotify events and drops the entries they touch.
    /// Returns true when events may remain: call again on the next turn.
    pub fn on_events(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        for _ in 0..READS_PER_WAKE {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n =
                unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return false;
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
                self.on_event(ev.wd, ev.mask, name);
                pos = name_end;
            }
        }
        true
    }

    fn on_event(&mut self, wd: i32, mask: u32, name: &[u8]) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            self.clear();
            return;
        }
        let gone = mask & libc::IN_IGNORED != 0;
        let keys: Vec<Box<[u8]>> = match self.watches.get(&wd) {
            None => return,
            Some(Watch::File(keys)) => keys.clone(),
            Some(Watch::Dir(dir)) => {
                let mut target = dir.to_vec();
                if !name.is_empty() {
                    if !target.is_empty() {
                        target.push(b'/');
                    }
                    target.extend_from_slice(name);
                }
                let mut keys = vec![target.clone().into_boxed_slice()];
                for suffix in [&b".gz"[..], b".br"] {
                    if let Some(original) = target.strip_suffix(suffix) {
                        keys.push(original.into());
                    }
                }
                if gone {
                    self.dirs.remove(dir);
                }
                keys
            }
        };
        if gone {
            self.watches.remove(&wd);
        }
        for key in keys {
            self.drop_under(&key);
        }
    }

    /// Drops `path` and every entry below it.
    fn drop_under(&mut self, path: &[u8]) {
        let doomed: Vec<Box<[u8]>> = self
            .entries
            .keys()
            .filter(|key| {
                path.is_empty()
                    || ***key == *path
                    || (key.starts_with(path) && key.get(path.len()) == Some(&b'/'))
            })
            .cloned()
            .collect();
        for key in doomed {
            self.remove(&key);
        }
    }

    /// Drops one entry and the file watches that only it needed.
    fn remove(&mut self, key: &[u8]) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.bytes -= entry.content_bytes().min(self.bytes);
        let mut unused = Vec::new();
        for (&wd, watch) in self.watches.iter_mut() {
            if let Watch::File(keys) = watch
                && keys.iter().any(|k| **k == *key)
            {
                keys.retain(|k| **k != *key);
                if keys.is_empty() {
                    unused.push(wd);
                }
            }
        }
        for wd in unused {
            self.watches.remove(&wd);
            // SAFETY: removing a watch we added; an already-gone one fails harmlessly.
            unsafe { libc::inotify_rm_watch(self.inotify.as_raw_fd(), wd) };
        }
    }

    /// Starts over, empty (directory watches are kept: they are few).
    fn clear(&mut self) {
        let keys: Vec<Box<[u8]>> = self.entries.keys().cloned().collect();
        for key in keys {
            self.remove(&key);
        }
        self.bytes = 0;
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
