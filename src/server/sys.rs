//! The few system calls std and mio do not wrap, each in a safe function.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// Opens `path` relative to the directory `dir` (symlinks are followed, as
/// Python does) without ever blocking (a FIFO opens at once) and without
/// becoming a controlling terminal.
/// `scratch` is reused for the NUL-terminated copy of the path.
pub fn open_at(dir: &File, path: &[u8], scratch: &mut Vec<u8>) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    open_at_flags(dir, path, scratch, flags)
}

/// What [`open_checked`] found at a path.
pub enum Found {
    /// A regular file, open for reading, with its metadata.
    File(File, std::fs::Metadata),
    /// A directory: `handle` (opened with `O_PATH`) to look names up in,
    /// `entries` open for reading its entries unless that is not allowed.
    Dir { handle: File, entries: Option<File> },
    /// Anything else (a FIFO, a device, a socket): never opened.
    Other,
}

/// Opens `path` relative to the directory `dir` (symlinks are followed, as
/// Python does) only if it is a regular file or a directory, which is
/// checked before it is opened for reading: opening a FIFO could block the
/// loop, and opening a device can act (arming `/dev/watchdog`), even
/// through a symlink. It is first opened with `O_PATH`, which touches
/// nothing, its type read from that descriptor, and then that same inode
/// reopened for reading through `/proc/self/fd`.
/// `scratch` is reused for the NUL-terminated copy of the path.
pub fn open_checked(dir: &File, path: &[u8], scratch: &mut Vec<u8>) -> io::Result<Found> {
    let handle = open_at_flags(dir, path, scratch, libc::O_PATH | libc::O_CLOEXEC)?;
    let meta = handle.metadata()?;
    if meta.is_dir() {
        let entries = open_at_flags(
            &handle,
            b".",
            scratch,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        let entries = match entries {
            Ok(fd) => Some(fd),
            Err(e) if is_out_of_descriptors(&e) => return Err(e),
            Err(_) => None,
        };
        return Ok(Found::Dir { handle, entries });
    }
    if !meta.is_file() {
        return Ok(Found::Other);
    }
    use std::io::Write as _;
    scratch.clear();
    let _ = write!(scratch, "/proc/self/fd/{}\0", handle.as_raw_fd());
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: `scratch` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(scratch.as_ptr().cast(), flags) };
    if fd >= 0 {
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        return Ok(Found::File(unsafe { File::from_raw_fd(fd) }, meta));
    }
    // No /proc: open by name, and keep it only if it is the inode checked.
    use std::os::unix::fs::MetadataExt;
    let file = open_at(dir, path, scratch)?;
    let again = file.metadata()?;
    if again.is_file() && again.ino() == meta.ino() && again.dev() == meta.dev() {
        Ok(Found::File(file, again))
    } else {
        Ok(Found::Other)
    }
}

/// Is there a regular file at `path` under `dir` (symlinks followed)? One
/// `fstatat`; nothing is opened.
pub fn is_regular_file_at(dir: &File, path: &[u8], scratch: &mut Vec<u8>) -> bool {
    if !c_path(path, scratch) {
        return false;
    }
    // SAFETY: `scratch` is NUL-terminated; `st` is written by fstatat only.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(dir.as_raw_fd(), scratch.as_ptr().cast(), &mut st, 0) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// Writes `path` NUL-terminated into `scratch` (`.` for an empty path);
/// false if it holds a NUL itself.
fn c_path(path: &[u8], scratch: &mut Vec<u8>) -> bool {
    scratch.clear();
    scratch.extend_from_slice(if path.is_empty() { b"." } else { path });
    if scratch.contains(&0) {
        return false;
    }
    scratch.push(0);
    true
}

fn open_at_flags(dir: &File, path: &[u8], scratch: &mut Vec<u8>, flags: i32) -> io::Result<File> {
    if !c_path(path, scratch) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: `scratch` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), scratch.as_ptr().cast(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `sendfile(2)` from `file` at `offset` to the socket `out`; advances
/// `offset`. Returns 0 when the file has no more bytes at `offset`.
pub fn sendfile(out: RawFd, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both descriptors are open for the duration of the call and
    // `off` is a valid pointer.
    let n = unsafe { libc::sendfile(out, file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = u64::try_from(off).unwrap_or(*offset);
    Ok(n as usize)
}

/// `send(2)` with `MSG_MORE` when `more` is set, so a head followed by a
/// `sendfile` body leaves in the same packet even with `TCP_NODELAY` on.
pub fn send(sock: RawFd, buf: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::send(sock, buf.as_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A non-blocking listening socket on `addr` with `SO_REUSEADDR` (as Python's
/// `HTTPServer` sets it), dual-stack when `addr` is IPv6 (as Python's CLI
/// asks for), and the given backlog (std and mio fix it at 128).
pub fn listen(addr: std::net::SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use std::net::SocketAddr;
    use std::os::fd::{FromRawFd, OwnedFd};
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(domain, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned from here on, so it is closed on error.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    set_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on)?;
    // Accepted sockets inherit TCP_NODELAY: one setsockopt for all of them.
    set_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on)?;
    if domain == libc::AF_INET6 {
        // Best effort, as Python's DualStackServer: an IPv6-only host still binds.
        let _ = set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
    }
    // SAFETY: the sockaddr structs are plain data, fully initialized below.
    let rc = unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                libc::bind(
                    fd,
                    (&raw const sa).cast(),
                    size_of_val(&sa) as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_scope_id = a.scope_id();
                libc::bind(
                    fd,
                    (&raw const sa).cast(),
                    size_of_val(&sa) as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // The kernel hands a connection over once its request has come, so
    // accepting it and answering it take one wake-up, not two, and a
    // socket opened ahead of time costs the loop nothing until it is used
    // (or, with nothing sent, until the kernel gives up waiting, about a
    // second). Best effort.
    let _ = set_opt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 1);
    // SAFETY: `fd` is a bound socket.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(sock))
}

/// How many times the kernel retransmitted this accepted connection's
/// SYN-ACK (`tcpi_total_retrans` starts there): with `TCP_DEFER_ACCEPT`,
/// at least once for a client that stayed silent through the deferral,
/// never for one handed over early by a SYN cookie. 0 if unknown.
pub fn syn_ack_retransmits(fd: RawFd) -> u32 {
    // SAFETY: an all-zero `tcp_info` is valid; the kernel fills at most
    // `len` bytes of it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc < 0 { 0 } else { info.tcpi_total_retrans }
}

/// Makes the socket's close send a reset (`SO_LINGER` 0) instead of a FIN:
/// for a response cut off midway whose end only the close would mark, a
/// FIN would let the client take the truncated body for a whole one.
pub fn reset_on_close(fd: RawFd) {
    let value = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `value` is a valid `linger` for the duration of the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const value).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn set_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A `signalfd` for `signals`, which are blocked so they arrive only there.
/// Children get a clean signal mask from std's spawn.
pub fn signal_fd(signals: &[libc::c_int]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: the sigset is initialized by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one pending signal number from a `signalfd`, if any.
pub fn read_signal(fd: &std::os::fd::OwnedFd) -> Option<u32> {
    // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = size_of_val(&info);
        let n = libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size);
        (n == size as isize).then_some(info.ssi_signo)
    }
}

/// The process or the system is out of descriptors (or of memory for
/// them): worth waiting for, unlike a missing file.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
    )
}

/// A directory's entries read with `getdents64` from an open descriptor, a
/// buffer at a time, so a huge directory is read in bounded steps and
/// nothing can swap the directory for another (or for a symlink) between
/// the check and the read: the descriptor is the directory checked.
pub struct DirReader {
    dir: File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    done: bool,
}

/// What `d_type` says an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Dir,
    Symlink,
    /// The file system did not say: ask `fstatat`.
    Unknown,
    Other,
}

impl DirReader {
    const BUFFER: usize = 32 * 1024;

    pub fn new(dir: File) -> DirReader {
        DirReader {
            dir,
            buf: vec![0; Self::BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            done: false,
        }
    }

    /// The directory, for `fstatat` relative to it.
    pub fn dir(&self) -> &File {
        &self.dir
    }

    /// The next entry other than `.` and `..`, or `None` at the end.
    pub fn next_entry(&mut self) -> Option<io::Result<(&[u8], EntryType)>> {
        match self.advance()? {
            Ok((start, len, kind)) => Some(Ok((&self.buf[start..start + len], kind))),
            Err(e) => Some(Err(e)),
        }
    }

    /// Finds the next entry: where its name is in `buf`, and its type.
    fn advance(&mut self) -> Option<io::Result<(usize, usize, EntryType)>> {
        loop {
            if self.pos >= self.len {
                if self.done {
                    return None;
                }
                // SAFETY: getdents64 writes at most buf.len() bytes into buf.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        self.dir.as_raw_fd(),
                        self.buf.as_mut_ptr(),
                        self.buf.len(),
                    )
                };
                if n < 0 {
                    self.done = true;
                    return Some(Err(io::Error::last_os_error()));
                }
                if n == 0 {
                    self.done = true;
                    return None;
                }
                self.pos = 0;
                self.len = n as usize;
            }
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen;
            // u8 d_type; char d_name[]; }
            let rec = &self.buf[self.pos..self.len];
            if rec.len() < 19 {
                self.pos = self.len;
                continue;
            }
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            if reclen < 19 || reclen > rec.len() {
                self.pos = self.len;
                continue;
            }
            let d_type = rec[18];
            let raw = &rec[19..reclen];
            let name_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let start = self.pos + 19;
            self.pos += reclen;
            let name = &self.buf[start..start + name_len];
            if name == b"." || name == b".." || name.is_empty() {
                continue;
            }
            let name_len = name.len();
            let kind = match d_type {
                libc::DT_DIR => EntryType::Dir,
                libc::DT_LNK => EntryType::Symlink,
                libc::DT_UNKNOWN => EntryType::Unknown,
                _ => EntryType::Other,
            };
            return Some(Ok((start, name_len, kind)));
        }
    }
}

/// `fstatat` relative to `dir`, following symlinks unless `nofollow`.
pub fn stat_at(
    dir: &File,
    name: &[u8],
    nofollow: bool,
    scratch: &mut Vec<u8>,
) -> Option<libc::stat> {
    if !c_path(name, scratch) {
        return None;
    }
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: `scratch` is NUL-terminated; `st` is written by fstatat only.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstatat(dir.as_raw_fd(), scratch.as_ptr().cast(), &mut st, flags) == 0).then_some(st)
    }
}

/// Where `name` under `dir` leads, symlinks resolved, as an absolute path:
/// opened with `O_PATH` (which touches nothing) and asked of `/proc`.
pub fn real_path_at(dir: &File, name: &[u8], scratch: &mut Vec<u8>) -> Option<std::path::PathBuf> {
    let handle = open_at_flags(dir, name, scratch, libc::O_PATH | libc::O_CLOEXEC).ok()?;
    real_path(&handle)
}

/// The path an open descriptor names now, from `/proc/self/fd`.
pub fn real_path(file: &File) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// A descriptor that becomes readable when `pid` exits (`pidfd_open`,
/// Linux 5.3), so a child's end is an event in the poll and no signal is
/// needed. `None` where the kernel has none.
pub fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: a plain syscall; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: a fresh descriptor, owned from here on.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A file in `dir` that has no name (`O_TMPFILE`): nothing to clean up,
/// whatever happens to the process. Where the filesystem cannot do that, a
/// file made with `O_EXCL` and unlinked at once.
pub fn temp_file(dir: &std::path::Path) -> io::Result<File> {
    use std::os::unix::ffi::OsStrExt;
    let mut scratch = Vec::new();
    if !c_path(dir.as_os_str().as_bytes(), &mut scratch) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: `scratch` is NUL-terminated; the result is checked.
    let fd = unsafe { libc::open(scratch.as_ptr().cast(), flags, 0o600) };
    if fd >= 0 {
        // SAFETY: a fresh descriptor, owned from here on.
        return Ok(unsafe { File::from_raw_fd(fd) });
    }
    let e = io::Error::last_os_error();
    if !matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
    ) {
        return Err(e);
    }
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..16 {
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".tinyserve-upload-{}-{n}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// Drops this process's page-table entries for code and constants that
/// are clean copies of their files (read-only, private, not one page
/// written: `Anonymous: 0 kB` in `/proc/self/smaps`), so the pages only
/// start-up touched stop counting as resident. Nothing is lost: a page
/// touched again is mapped again from the page cache, as after the kernel
/// reclaimed it, which it may do to such pages at any time. Returns the
/// KiB released. It reads `/proc` (in-kernel, a few hundred
/// microseconds): at start-up, and when the server is idle.
pub fn release_clean_file_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    // The mapping being read: its range and resident KiB, if it is a
    // candidate; whether a page of it was ever written.
    let mut current: Option<(usize, usize, usize)> = None;
    let mut written = true;
    let mut flush = |range: Option<(usize, usize, usize)>, written: bool| {
        let Some((start, end, rss)) = range else {
            return;
        };
        if written || rss == 0 {
            return;
        }
        // SAFETY: a whole mapping of this process, read-only and never
        // written (no private copy of any page): MADV_DONTNEED drops its
        // page-table entries and the next access maps the file again.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += rss;
        }
    };
    for line in smaps.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // `start-end perms offset dev inode path`: a new mapping.
            flush(current.take(), written);
            written = true;
            let perms = words.next().unwrap_or("").as_bytes();
            let path = words.nth(3).unwrap_or("");
            if perms.len() == 4
                && perms[0] == b'r'
                && perms[1] == b'-'
                && perms[3] == b'p'
                && path.starts_with('/')
            {
                current = Some((start, end, 0));
            }
            continue;
        }
        let kib = words.next().and_then(|v| v.parse::<usize>().ok());
        match (first, kib, current.as_mut()) {
            ("Rss:", Some(v), Some(c)) => c.2 = v,
            // A private copy of a page, resident or swapped out, would be
            // lost (a relocated page, say): such a mapping is left alone.
            ("Anonymous:", Some(v), Some(_)) => written = v != 0,
            ("Swap:", Some(v), Some(_)) => written |= v != 0,
            _ => {}
        }
    }
    flush(current.take(), written);
    released
}

#[cfg(test)]
mod tests {
    #[test]
    fn released_pages_come_back_when_touched() {
        let before: Vec<String> = (0..100).map(|i| format!("{i:>4}")).collect();
        let kib = super::release_clean_file_pages();
        assert!(kib > 0, "this test binary has clean code pages resident");
        // Code, constants and shared libraries all still work.
        let mut after: Vec<String> = (0..100).rev().map(|i| format!("{i:>4}")).collect();
        after.sort();
        assert_eq!(before, after);
        assert!(std::fs::metadata("/proc/self/smaps").is_ok());
    }
}
