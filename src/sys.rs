//! The few system calls std and mio do not wrap, each in a safe function.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// Opens `path` relative to the directory `dir` (symlinks are followed, as
/// Python does) without ever blocking (a FIFO opens at once) and without
/// becoming a controlling terminal.
/// `scratch` is reused for the NUL-terminated copy of the path.
pub fn open_at(dir: &File, path: &[u8], scratch: &mut Vec<u8>) -> io::Result<File> {
    scratch.clear();
    scratch.extend_from_slice(if path.is_empty() { b"." } else { path });
    if scratch.contains(&0) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    scratch.push(0);
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
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
    // SAFETY: `fd` is a bound socket.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(sock))
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
