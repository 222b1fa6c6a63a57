//! The access log, in Python's format:
//! `127.0.0.1 - - [21/Nov/2026 18:39:29] "GET / HTTP/1.1" 200 -`.
//!
//! Lines are collected in a buffer and written to stderr once per turn of the
//! event loop, so a busy server makes one `write` for many requests.

use crate::clock::Clock;
use crate::escape::{latin1_chars, push_log_text};
use std::io::Write;
use std::net::IpAddr;

pub struct AccessLog {
    buf: Vec<u8>,
    quiet: bool,
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
        }
    }

    fn start(&mut self, clock: &Clock, peer: IpAddr) {
        let _ = write!(self.buf, "{} - - [", client_ip(peer));
        self.buf.extend_from_slice(clock.log_date());
        self.buf.extend_from_slice(b"] ");
    }

    /// `"GET / HTTP/1.1" 200 -`: what Python's `log_request` writes.
    pub fn request(&mut self, clock: &Clock, peer: IpAddr, request_line: &[u8], code: u16) {
        if self.quiet {
            return;
        }
        self.start(clock, peer);
        self.buf.push(b'"');
        push_log_text(&mut self.buf, latin1_chars(request_line));
        let _ = writeln!(self.buf, "\" {code} -");
    }

    /// `code 404, message File not found`: what Python's `send_error` logs.
    pub fn error(&mut self, clock: &Clock, peer: IpAddr, code: u16, message: &str) {
        if self.quiet {
            return;
        }
        self.start(clock, peer);
        let _ = write!(self.buf, "code {code}, message ");
        push_log_text(&mut self.buf, message.chars());
        self.buf.push(b'\n');
    }

    /// Any other event about a client (a timeout, a reset).
    pub fn note(&mut self, clock: &Clock, peer: IpAddr, text: &str) {
        if self.quiet {
            return;
        }
        self.start(clock, peer);
        push_log_text(&mut self.buf, text.chars());
        self.buf.push(b'\n');
    }

    /// Writes what has been collected. A failing stderr is not worth dying
    /// for: the lines are dropped.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = std::io::stderr().write_all(&self.buf);
            self.buf.clear();
        }
    }

    #[cfg(test)]
    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.buf)).unwrap()
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
    fn quiet_logs_nothing() {
        let clock = Clock::new();
        let mut log = AccessLog::new(true);
        log.request(&clock, "127.0.0.1".parse().unwrap(), b"GET / HTTP/1.1", 200);
        assert!(log.take().is_empty());
    }
}
