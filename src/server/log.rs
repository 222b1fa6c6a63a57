//! The access log, in Python's format:
//! `127.0.0.1 - - [21/Nov/2026 18:39:29] "GET / HTTP/1.1" 200 -`.
//!
//! Lines are collected in a buffer and written to stderr once per turn of the
//! event loop, so a busy server makes one `write` for many requests.
//!
//! The log never blocks the loop: stderr may be a pipe nobody reads (a
//! supervisor that captures it and stalls, a test harness), a terminal
//! paused with Ctrl-S, or a socket. Writes go through a descriptor of our
//! own that never blocks (`Sink`); what cannot be written waits in a
//! buffer of at most [`MAX_PENDING`] bytes; when that is full, lines are
//! dropped and counted, and the count is logged once stderr drains.

use crate::proto::escape::{push_log_latin1, push_log_text};
use crate::proto::response::push_decimal;
use crate::server::clock::Clock;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Where log lines go when not to stderr: a batch of whole lines a call.
pub type LogFn = Box<dyn FnMut(&[u8])>;

/// Most log bytes held while stderr does not take them.
pub const MAX_PENDING: usize = 64 * 1024;

pub struct AccessLog {
    buf: Vec<u8>,
    quiet: bool,
    sink: Sink,
    /// Lines dropped because the buffer was full, not yet reported.
    dropped: u64,
}

/// The address as Python prints it; an IPv4 client of a dual-stack socket
/// shows as `127.0.0.1`, not `::ffff:127.0.0.1`.
pub fn client_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl AccessLog {
    pub fn new(quiet: bool) -> AccessLog {
        AccessLog {
            buf: Vec::new(),
            quiet,
            sink: Sink::stderr(),
            dropped: 0,
        }
    }

    /// Appends one line made by `write`, or drops it whole if the buffer
    /// would go over its bound.
    fn line(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        write(&mut self.buf);
        if self.buf.len() > MAX_PENDING {
            self.buf.truncate(start);
            self.dropped += 1;
        }
    }

    fn start(buf: &mut Vec<u8>, clock: &Clock, peer: IpAddr) {
        // By hand for IPv4: `Display` through `fmt` was an eighth of a
        // keep-alive request's instructions.
        match client_ip(peer) {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf.push(b'.');
                    }
                    push_decimal(buf, u64::from(octet));
                }
            }
            v6 => {
                let _ = write!(buf, "{v6}");
            }
        }
        buf.extend_from_slice(b" - - [");
        buf.extend_from_slice(clock.log_date());
        buf.extend_from_slice(b"] ");
    }

    /// `"GET / HTTP/1.1" 200 -`: what Python's `log_request` writes.
    pub fn request(&mut self, clock: &Clock, peer: IpAddr, request_line: &[u8], code: u16) {
        if self.quiet {
            return;
        }
        self.line(|buf| {
            Self::start(buf, clock, peer);
            buf.push(b'"');
            push_log_latin1(buf, request_line);
            buf.extend_from_slice(b"\" ");
            push_decimal(buf, u64::from(code));
            buf.extend_from_slice(b" -\n");
        });
    }

    /// `code 404, message File not found`: what Python's `send_error` logs.
    pub fn error(&mut self, clock: &Clock, peer: IpAddr, code: u16, message: &str) {
        if self.quiet {
            return;
        }
        self.line(|buf| {
            Self::start(buf, clock, peer);
            let _ = write!(buf, "code {code}, message ");
            push_log_text(buf, message.chars());
            buf.push(b'\n');
        });
    }

    /// Any other event about a client (a timeout, a reset).
    pub fn note(&mut self, clock: &Clock, peer: IpAddr, text: &str) {
        if self.quiet {
            return;
        }
        self.line(|buf| {
            Self::start(buf, clock, peer);
            push_log_text(buf, text.chars());
            buf.push(b'\n');
        });
    }

    /// A line about the server itself (`tinyserve: ...`), written even with
    /// `-q`.
    pub fn server_note(&mut self, text: &str) {
        self.line(|buf| {
            buf.extend_from_slice(b"tinyserve: ");
            push_log_text(buf, text.chars());
            buf.push(b'\n');
        });
    }

    /// Sends the lines to `f` instead of stderr.
    pub fn set_sink(&mut self, f: LogFn) {
        self.sink = Sink::User(f);
    }

    /// Whether lines are waiting for stderr to take them.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.dropped > 0
    }

    /// Writes what stderr takes now, without waiting; keeps the rest. A
    /// failing stderr is not worth dying for: its lines are dropped.
    pub fn flush(&mut self) {
        loop {
            if self.buf.is_empty() {
                if self.dropped == 0 {
                    return;
                }
                let n = std::mem::take(&mut self.dropped);
                let _ = writeln!(
                    self.buf,
                    "tinyserve: {n} log lines dropped: stderr was not taking them"
                );
            }
            match self.sink.write(&self.buf) {
                Ok(0) => return,
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.buf.clear();
                    return;
                }
            }
        }
    }

    #[cfg(test)]
    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.buf)).unwrap()
    }
}

/// A way to write to stderr that never blocks (or the user's own).
enum Sink {
    /// A function given the lines (`ServerBuilder::log_to`).
    User(LogFn),
    /// Our own open file description of the same pipe or terminal, made
    /// non-blocking (setting `O_NONBLOCK` on fd 2 itself would change it for
    /// the shell and every process sharing it).
    Own(OwnedFd),
    /// A socket: each send says `MSG_DONTWAIT`.
    Socket,
    /// A regular file, which does not block.
    File,
    /// Could not be reopened: write only when `poll` says there is room,
    /// at most `PIPE_BUF` bytes at a time (a write that size fits then).
    Polled,
}

const STDERR: RawFd = 2;

impl Sink {
    fn stderr() -> Sink {
        // SAFETY: fstat only writes into the struct we pass.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(STDERR, &mut st) } != 0 {
            return Sink::Polled;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Sink::File,
            libc::S_IFSOCK => Sink::Socket,
            _ => {
                let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
                // SAFETY: a NUL-terminated path; the result is checked.
                let fd = unsafe { libc::open(c"/proc/self/fd/2".as_ptr(), flags) };
                if fd < 0 {
                    return Sink::Polled;
                }
                // SAFETY: a fresh descriptor, owned from here on.
                Sink::Own(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY (all arms): `buf` is valid for the length passed.
        let n = match self {
            Sink::User(f) => {
                f(buf);
                return Ok(buf.len());
            }
            Sink::Own(fd) => unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) },
            Sink::File => unsafe { libc::write(STDERR, buf.as_ptr().cast(), buf.len()) },
            Sink::Socket => unsafe {
                let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
                libc::send(STDERR, buf.as_ptr().cast(), buf.len(), flags)
            },
            Sink::Polled => {
                let mut pfd = libc::pollfd {
                    fd: STDERR,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, no waiting.
                if unsafe { libc::poll(&mut pfd, 1, 0) } != 1 || pfd.revents & libc::POLLOUT == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let len = buf.len().min(libc::PIPE_BUF);
                unsafe { libc::write(STDERR, buf.as_ptr().cast(), len) }
            }
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_pythons() {
        let clock = Clock::new();
        let mut log = AccessLog::new(false);
        let peer: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        log.error(&clock, peer, 404, "File not found");
        log.request(&clock, peer, b"GET /\x1b HTTP/1.1", 404);
        let text = log.take();
        let date = std::str::from_utf8(clock.log_date()).unwrap();
        assert_eq!(
            text,
            format!(
                "127.0.0.1 - - [{date}] code 404, message File not found\n\
                 127.0.0.1 - - [{date}] \"GET /\\x1b HTTP/1.1\" 404 -\n"
            )
        );
    }

    #[test]
    fn addresses_are_written_as_python_writes_them() {
        let clock = Clock::new();
        let mut log = AccessLog::new(false);
        for (peer, shown) in [
            ("10.200.3.0", "10.200.3.0"),
            ("255.255.255.255", "255.255.255.255"),
            ("0.0.0.0", "0.0.0.0"),
            ("::ffff:192.168.1.20", "192.168.1.20"),
            ("::1", "::1"),
            ("2001:db8::7", "2001:db8::7"),
        ] {
            log.request(&clock, peer.parse().unwrap(), b"GET / HTTP/1.1", 200);
            let text = log.take();
            assert!(text.starts_with(&format!("{shown} - - [")), "{text}");
            assert!(text.ends_with("] \"GET / HTTP/1.1\" 200 -\n"), "{text}");
        }
    }

    #[test]
    fn quiet_logs_nothing() {
        let clock = Clock::new();
        let mut log = AccessLog::new(true);
        log.request(&clock, "127.0.0.1".parse().unwrap(), b"GET / HTTP/1.1", 200);
        assert!(log.take().is_empty());
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_and_counts_them() {
        let clock = Clock::new();
        let mut log = AccessLog::new(false);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..10_000 {
            log.request(&clock, peer, b"GET /some/longer/path HTTP/1.1", 200);
        }
        assert!(log.buf.len() <= MAX_PENDING);
        assert!(log.dropped > 0);
        assert!(log.buf.ends_with(b"200 -\n"));
    }
}
