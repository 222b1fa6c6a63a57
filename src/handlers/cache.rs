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
//!
//! inotify is trusted only on file systems known to deliver its events for
//! every change (local ones: ext4, xfs, btrfs, tmpfs...). On others (NFS,
//! SMB, FUSE, 9p, VM shared folders: changes made elsewhere send no event)
//! an entry is checked with `stat` before it is used, at most once a second,
//! as lighttpd's "simple" stat cache does.
//!
//! Ceilings: [`MAX_ENTRIES`] entries, [`MAX_BYTES`] of content, a quarter of
//! the open-file limit in descriptors, [`MAX_WATCHES`] inotify watches (a
//! watch is removed with the last entry that needs it). Full, the oldest
//! entry goes first; out of descriptors, half of them go ([`FileCache::shed`]).

use crate::proto::conditional::Validators;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Files up to this size are kept in memory and sent from there.
pub const MAX_CONTENT: u64 = 16 * 1024;
pub const MAX_ENTRIES: usize = 1024;
pub const MAX_BYTES: usize = 1 << 20;
/// inotify watches held at most (each counts against the user's
/// system-wide `max_user_watches`).
pub const MAX_WATCHES: usize = 2048;
/// How often an entry on a file system without reliable inotify is checked.
const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

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
    /// What identifies this version of the file: device, inode, size,
    /// modification and change times.
    stamp: Stamp,
}

type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp_of(meta: &std::fs::Metadata) -> Stamp {
    (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

fn stamp_of_stat(st: &libc::stat) -> Stamp {
    (
        st.st_dev,
        st.st_ino,
        u64::try_from(st.st_size).unwrap_or(0),
        st.st_mtime,
        st.st_mtime_nsec,
        st.st_ctime,
        st.st_ctime_nsec,
    )
}

impl FileFacts {
    pub fn from_meta(file: Rc<File>, meta: &std::fs::Metadata) -> FileFacts {
        let validators = Validators::new(meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec());
        FileFacts {
            file,
            content: None,
            len: meta.len(),
            last_modified: crate::server::clock::http_date(validators.last_modified),
            validators,
            stamp: stamp_of(meta),
        }
    }
}

pub struct Entry {
    pub content_type: &'static str,
    pub identity: FileFacts,
    /// `file.br` and `file.gz`, when they exist.
    pub br: Option<FileFacts>,
    pub gzip: Option<FileFacts>,
    /// `None` where inotify is trusted; else when to `stat` it next.
    check_at: Option<Instant>,
    /// Insertion number, for evicting the oldest first.
    born: u64,
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
    fn files(&self) -> impl Iterator<Item = &FileFacts> {
        [Some(&self.identity), self.br.as_ref(), self.gzip.as_ref()]
            .into_iter()
            .flatten()
    }

    /// Bytes of file content this entry holds in memory.
    fn content_bytes(&self) -> usize {
        self.files()
            .filter_map(|f| f.content.as_ref().map(|b| b.len()))
            .sum()
    }

    fn descriptors(&self) -> usize {
        self.files().count()
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

/// A watched directory: its watch and how many entries lie below it.
struct WatchedDir {
    wd: i32,
    users: usize,
}

pub struct FileCache {
    inotify: OwnedFd,
    entries: PathMap<Entry>,
    /// Keys in insertion order (some may be gone already).
    order: VecDeque<(u64, Box<[u8]>)>,
    born: u64,
    watches: HashMap<i32, Watch>,
    dirs: PathMap<WatchedDir>,
    bytes: usize,
    /// Descriptors held by entries, and the most they may hold.
    fds: usize,
    max_fds: usize,
    /// Treat every file system as one whose inotify cannot be trusted, and
    /// watch nothing (a setting for tests of that path:
    /// `TINYSERVE_CACHE_REVALIDATE=1`).
    revalidate_all: bool,
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

/// File systems whose inotify events cover every change to their files:
/// local ones, where all writes go through this kernel.
fn inotify_is_trusted(file: &File) -> bool {
    // SAFETY: fstatfs only writes into the struct we pass.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    const TRUSTED: [i64; 12] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F5_2010, // f2fs
        0x2FC1_2FC1, // zfs
        0x3153_464A, // jfs
        0x5265_4973, // reiserfs
        0x4d44,      // vfat
        0x2011_BAB0, // exfat
        0x7461_636f, // ocfs2 (local mounts)
        0x5346_544e, // ntfs
    ];
    TRUSTED.contains(&(st.f_type as i64))
}

impl FileCache {
    /// A cache holding at most `max_fds` descriptors.
    pub fn new(max_fds: usize) -> io::Result<FileCache> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileCache {
            // SAFETY: a fresh descriptor owned from here on.
            inotify: unsafe { OwnedFd::from_raw_fd(fd) },
            entries: PathMap::default(),
            order: VecDeque::new(),
            born: 0,
            watches: HashMap::new(),
            dirs: PathMap::default(),
            bytes: 0,
            fds: 0,
            max_fds: max_fds.max(3),
            revalidate_all: std::env::var_os("TINYSERVE_CACHE_REVALIDATE")
                .is_some_and(|v| v == "1"),
        })
    }

    /// The descriptor to register in the poll.
    pub fn fd(&self) -> i32 {
        self.inotify.as_raw_fd()
    }

    /// How many inotify watches are held (for tests and the README).
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    pub fn get(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// The entry for `rel`, checked first with `stat` (at most once a
    /// second) if it lives where inotify cannot be trusted; a changed one
    /// is dropped, so the caller opens the file afresh.
    pub fn get_fresh(&mut self, root: &File, rel: &[u8], now: Instant) -> Option<&Entry> {
        let check_at = self.entries.get(rel)?.check_at;
        if let Some(at) = check_at
            && now >= at
        {
            let mut scratch = Vec::new();
            let entry = self.entries.get(rel)?;
            let unchanged = same_file(root, rel, b"", Some(&entry.identity), &mut scratch)
                && same_file(root, rel, b".br", entry.br.as_ref(), &mut scratch)
                && same_file(root, rel, b".gz", entry.gzip.as_ref(), &mut scratch);
            if !unchanged {
                self.remove(rel);
                return None;
            }
            if let Some(entry) = self.entries.get_mut(rel) {
                entry.check_at = Some(now + REVALIDATE_EVERY);
            }
        }
        self.entries.get(rel)
    }

    /// Caches the file at `rel` (already open as `file`), if it qualifies:
    /// a regular file reached without symlinks, its directories and itself
    /// (and its twins) watched.
    pub fn insert(
        &mut self,
        root: &File,
        root_path: &Path,
        rel: &[u8],
        file: &Rc<File>,
        now: Instant,
    ) {
        if rel.is_empty() || self.entries.contains_key(rel) {
            return;
        }
        let full = root_path.join(std::ffi::OsStr::from_bytes(rel));
        if crate::server::sys::real_path(file).is_none_or(|real| real != full) {
            return; // reached through a symlink: its target is not watched
        }
        // Room first: entries, content, descriptors (three at most), watches
        // (one per directory on the way, and three files).
        let depth = memchr::memchr_iter(b'/', rel).count() + 1;
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_ENTRIES
                || self.bytes >= MAX_BYTES
                || self.fds + 3 > self.max_fds
                || self.watches.len() + depth + 3 > MAX_WATCHES)
        {
            self.evict_oldest();
        }
        if self.fds + 3 > self.max_fds || self.watches.len() + depth + 3 > MAX_WATCHES {
            return;
        }
        let trusted = !self.revalidate_all && inotify_is_trusted(file);
        // Watch first, read second: a change after this point is seen.
        // (Where no event can be trusted, none is asked for: `stat` does it.)
        if trusted && !self.watch_dirs(root_path, rel) {
            return;
        }
        if trusted && !self.watch_file(&full, rel) {
            self.forget_file_watches(rel);
            self.release_dirs(rel);
            return;
        }
        let Some(identity) = cached_file(Rc::clone(file)) else {
            self.forget_file_watches(rel);
            self.release_dirs(rel);
            return;
        };
        let mut scratch = Vec::new();
        let mut twin = |suffix: &[u8]| {
            let mut name = rel.to_vec();
            name.extend_from_slice(suffix);
            let crate::server::sys::Found::File(f, _) =
                crate::server::sys::open_checked(root, &name, &mut scratch).ok()?
            else {
                return None;
            };
            let mut full_twin = full.clone().into_os_string();
            full_twin.push(std::ffi::OsStr::from_bytes(suffix));
            (crate::server::sys::real_path(&f)?.as_os_str() == full_twin).then_some(())?;
            (!trusted || self.watch_file(Path::new(&full_twin), rel)).then_some(())?;
            cached_file(Rc::new(f))
        };
        let serves = |t: &FileFacts| {
            crate::handlers::files::twin_serves_for(
                (t.stamp.3, t.stamp.4, t.len),
                (identity.stamp.3, identity.stamp.4, identity.len),
            )
        };
        let br = twin(b".br").filter(serves);
        let gzip = twin(b".gz").filter(serves);
        self.born += 1;
        let entry = Entry {
            content_type: crate::proto::mime::content_type(rel),
            br,
            gzip,
            identity,
            check_at: (!trusted).then_some(now + REVALIDATE_EVERY),
            born: self.born,
        };
        self.bytes += entry.content_bytes();
        self.fds += entry.descriptors();
        self.order.push_back((self.born, rel.into()));
        self.entries.insert(rel.into(), entry);
    }

    /// Drops half of the entries, oldest first, to give their descriptors
    /// back: called when an `open` fails with EMFILE.
    pub fn shed(&mut self) {
        let target = self.entries.len() / 2;
        while self.entries.len() > target {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((born, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|e| e.born == born) {
                self.remove(&key);
                return;
            }
        }
        // The order lost track (it cannot, but never loop): start over.
        let keys: Vec<Box<[u8]>> = self.entries.keys().cloned().collect();
        for key in keys {
            self.remove(&key);
        }
    }

    fn add_watch(&self, path: &Path, mask: u32) -> Option<i32> {
        let mut c = path.as_os_str().as_bytes().to_vec();
        c.push(0);
        // SAFETY: `c` is NUL-terminated and outlives the call.
        let wd =
            unsafe { libc::inotify_add_watch(self.inotify.as_raw_fd(), c.as_ptr().cast(), mask) };
        (wd >= 0).then_some(wd)
    }

    fn rm_watch(&self, wd: i32) {
        // SAFETY: removing a watch we added; an already-gone one fails harmlessly.
        unsafe { libc::inotify_rm_watch(self.inotify.as_raw_fd(), wd) };
    }

    /// The directories from the root down to the one holding `rel`.
    fn dirs_of(rel: &[u8]) -> impl Iterator<Item = &[u8]> {
        std::iter::once(0)
            .chain(memchr::memchr_iter(b'/', rel))
            .map(move |end| &rel[..end])
    }

    /// Watches (or counts one more user of) every directory from the root
    /// to the one holding `rel`.
    /// On failure nothing is left counted.
    fn watch_dirs(&mut self, root: &Path, rel: &[u8]) -> bool {
        let mut done = 0;
        for dir in Self::dirs_of(rel) {
            if let Some(d) = self.dirs.get_mut(dir) {
                d.users += 1;
                done += 1;
                continue;
            }
            let Some(wd) = self.add_watch(&root.join(std::ffi::OsStr::from_bytes(dir)), DIR_EVENTS)
            else {
                self.release_dirs_upto(rel, done);
                return false;
            };
            self.watches.insert(wd, Watch::Dir(dir.into()));
            self.dirs.insert(dir.into(), WatchedDir { wd, users: 1 });
            done += 1;
        }
        true
    }

    /// One user fewer for each directory above `rel`; a directory no entry
    /// needs is no longer watched.
    fn release_dirs(&mut self, rel: &[u8]) {
        self.release_dirs_upto(rel, usize::MAX);
    }

    /// [`FileCache::release_dirs`] for the first `count` directories only.
    fn release_dirs_upto(&mut self, rel: &[u8], count: usize) {
        for dir in Self::dirs_of(rel).take(count) {
            let Some(d) = self.dirs.get_mut(dir) else {
                continue;
            };
            d.users = d.users.saturating_sub(1);
            if d.users == 0 {
                let wd = d.wd;
                self.dirs.remove(dir);
                self.watches.remove(&wd);
                self.rm_watch(wd);
            }
        }
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
            Some(Watch::Dir(dir)) if gone => vec![dir.clone()],
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
                keys
            }
        };
        if gone {
            // The kernel dropped this watch (its inode went away): forget it,
            // and everything that needed it.
            if let Some(Watch::Dir(dir)) = self.watches.remove(&wd) {
                self.dirs.remove(&dir);
            }
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

    /// Drops the file watches that only `key` needed.
    fn forget_file_watches(&mut self, key: &[u8]) {
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
            self.rm_watch(wd);
        }
    }

    /// Drops one entry and the watches that only it needed.
    fn remove(&mut self, key: &[u8]) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.bytes -= entry.content_bytes().min(self.bytes);
        self.fds -= entry.descriptors().min(self.fds);
        if entry.check_at.is_none() {
            self.forget_file_watches(key);
            self.release_dirs(key);
        }
    }

    /// Starts over, empty.
    fn clear(&mut self) {
        let keys: Vec<Box<[u8]>> = self.entries.keys().cloned().collect();
        for key in keys {
            self.remove(&key);
        }
        self.order.clear();
        self.bytes = 0;
        self.fds = 0;
    }
}

/// Whether `rel` + `suffix` under `root` is still the file `cached` was
/// (or, with `cached` `None`, still absent as a regular file).
fn same_file(
    root: &File,
    rel: &[u8],
    suffix: &[u8],
    cached: Option<&FileFacts>,
    scratch: &mut Vec<u8>,
) -> bool {
    let mut name = rel.to_vec();
    name.extend_from_slice(suffix);
    let st = crate::server::sys::stat_at(root, &name, false, scratch)
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    match (st, cached) {
        (None, None) => true,
        (Some(st), Some(c)) => stamp_of_stat(&st) == c.stamp,
        _ => false,
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
