//! The CGI half of a connection: starting the script, streaming the request
//! body into it and its output back out, each through a bounded buffer, so
//! that a slow client stops the script and a slow script stops the client.

use super::flow::{OwnedHead, ReqInfo};
use super::{ChildEvent, Connection, Shared, Skip, Source, State, Step};
use crate::handler::{CgiCommand, Next, Protocol};
use crate::proto::cgi::{self, OutputParse};
use crate::proto::request::{BodyFraming, Version};
use crate::proto::response::{Head, status_has_body};
use crate::server::child;
use mio::unix::pipe::{Receiver, Sender};
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// How a CGI response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// The script's header has not been read yet.
    Pending,
    /// The script said how long its body is; this much is left.
    Length(u64),
    Chunked,
    /// The end of the body is the end of the connection.
    UntilClose,
    /// No body goes out (HEAD, 304...): the output is read and dropped.
    Discard,
}

/// A running CGI exchange: request body in, script output out, each
/// through a bounded buffer, so either side's slowness stops the other.
pub(super) struct CgiRun {
    pub(super) pid: u32,
    stdin: Option<Sender>,
    stdout: Option<Receiver>,
    pub(super) stdin_ready: bool,
    pub(super) stdout_ready: bool,
    /// Request body bytes still to come from the client.
    body_left: u64,
    /// Request body bytes read from the client, not yet taken by the script.
    to_child: Vec<u8>,
    /// The script's output while its header is incomplete.
    head: Vec<u8>,
    pub(super) framing: Framing,
    head_only: bool,
    chunked_ok: bool,
    /// Close the connection after this response.
    close: bool,
    /// The request line, logged once the status is known.
    pub(super) raw_line: Vec<u8>,
    /// When the script is stopped, whatever it is doing.
    pub(super) deadline: Instant,
    /// An HTTP/1.0 client whose connection is kept must be told so.
    announce_keep_alive: bool,
    /// When the script itself exited (its pipes may still be held by what
    /// it started).
    pub(super) exited: Option<Instant>,
}

/// After the script exits, how long what it started may keep its output
/// open before the response is ended and its process group stopped.
pub(super) const STRAY_GRACE: Duration = Duration::from_secs(1);

impl CgiRun {
    /// Whether the script's group may still hold its pipes.
    pub(super) fn holds_pipes(&self) -> bool {
        self.exited.is_none() || self.stdout.is_some() || self.stdin.is_some()
    }
}

/// Request body bytes held for a script, and script output read at once.
pub(super) const CGI_BUFFER: usize = 64 * 1024;

impl Connection {
    /// Starts the script and moves into the CGI state; a script that cannot
    /// start is a 500.
    pub(super) fn start_cgi(
        &mut self,
        command: CgiCommand,
        info: &ReqInfo,
        body_len: u64,
        close: bool,
        sh: &mut Shared,
    ) {
        let raw_line = info.raw_line;
        let chunked_ok = sh.config.protocol == Protocol::Http11 && info.version >= Version::HTTP_11;
        if *sh.scripts >= sh.max_scripts {
            // One client must not fork without end: past the ceiling, a
            // script waits for another to end.
            self.cgi_failed_on(
                503,
                "Server busy: too many CGI scripts running",
                raw_line,
                info.method_head,
                sh,
            );
            return;
        }
        let mut child = match child::spawn(&command) {
            Ok(child) => {
                *sh.scripts += 1;
                child
            }
            Err(e) if crate::server::sys::is_out_of_descriptors(&e) => {
                self.cgi_failed_on(
                    503,
                    "Server busy: out of file descriptors",
                    raw_line,
                    info.method_head,
                    sh,
                );
                return;
            }
            Err(e) => {
                let message = format!("CGI script could not be started: {e}");
                self.cgi_failed_on(500, &message, raw_line, info.method_head, sh);
                return;
            }
        };
        let base = self.key * crate::server::reactor::TOKENS_PER_CONNECTION;
        let registered = sh
            .registry
            .register(
                &mut child.stdin,
                Token(base + Source::Stdin as usize),
                Interest::WRITABLE,
            )
            .and_then(|()| {
                sh.registry.register(
                    &mut child.stdout,
                    Token(base + Source::Stdout as usize),
                    Interest::READABLE,
                )
            });
        let deadline = sh.clock.deadline(sh.timeouts.cgi);
        sh.children.push(ChildEvent::Spawned {
            pid: child.pid,
            deadline,
            key: self.key,
        });
        if let Err(e) = registered {
            let message = format!("CGI script could not be watched: {e}");
            self.cgi_failed_on(500, &message, raw_line, info.method_head, sh);
            return;
        }
        self.deadline = deadline;
        self.state = State::Cgi(Box::new(CgiRun {
            pid: child.pid,
            stdin: Some(child.stdin),
            stdout: Some(child.stdout),
            stdin_ready: true,
            stdout_ready: true,
            body_left: if command.with_body { body_len } else { 0 },
            to_child: Vec::new(),
            head: Vec::new(),
            framing: Framing::Pending,
            head_only: info.method_head,
            chunked_ok,
            close,
            raw_line: raw_line.to_vec(),
            deadline,
            announce_keep_alive: info.version < Version::HTTP_11,
            exited: None,
        }));
    }

    /// Answers with an error page in place of a script's output; the
    /// connection then closes (and the reactor stops the script).
    pub(super) fn cgi_failed(
        &mut self,
        status: u16,
        message: &str,
        raw_line: &[u8],
        sh: &mut Shared,
    ) {
        let head_only = matches!(&self.state, State::Cgi(run) if run.head_only);
        self.cgi_failed_on(status, message, raw_line, head_only, sh);
    }

    fn cgi_failed_on(
        &mut self,
        status: u16,
        message: &str,
        raw_line: &[u8],
        head_only: bool,
        sh: &mut Shared,
    ) {
        let head = OwnedHead::synthetic(
            if head_only { b"HEAD" } else { b"GET" },
            b"/",
            b"HTTP/1.0",
            self.peer,
        );
        let mut page = Vec::new();
        head.with_req(|req| {
            let mut ex = sh.error_exchange(req, Some(&mut page));
            ex.send_error(status, Some(message), None);
            ex.finish()
        });
        sh.log.error(sh.clock, self.peer.ip(), status, message);
        sh.log.request(sh.clock, self.peer.ip(), raw_line, status);
        self.out.extend_from_slice(&page);
        self.clean_close = false;
        self.state = State::Closing;
    }

    /// One round of a CGI exchange: output to the client, request body to
    /// the script, script output in, the client watched for leaving.
    /// Progress on any of them counts.
    pub(super) fn cgi_step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if *sh.turn_bytes >= super::TURN_BUDGET {
            return Ok(Step::Yield);
        }
        let mut progressed = false;
        if self.out_pos < self.out.len() && self.writable {
            progressed |= matches!(self.send_out(sh)?, Step::Continue);
        }
        progressed |= self.cgi_read_body(sh)?;
        progressed |= self.cgi_watch_client(sh)?;
        progressed |= self.cgi_feed_stdin();
        if self.out_pos == self.out.len() {
            progressed |= self.cgi_read_output(sh)?;
        }
        let State::Cgi(run) = &mut self.state else {
            return Ok(Step::Continue);
        };
        // Everything the response needs from the script has come: a body
        // of the promised length, or none at all. What the script does
        // after that is its own business (it is still stopped at its
        // deadline); the connection goes on.
        let output_done =
            run.stdout.is_none() || matches!(run.framing, Framing::Length(0) | Framing::Discard);
        if output_done && run.stdin.is_none() && self.out_pos == self.out.len() {
            run.stdout = None;
            if run.close {
                self.state = State::Closing;
            } else {
                self.await_request(sh);
            }
            return Ok(Step::Continue);
        }
        Ok(if progressed {
            Step::Continue
        } else {
            Step::Blocked
        })
    }

    /// Once the request body is in, watches the client: one that has left
    /// stops the script (the reactor stops its group when we close) once
    /// a write to it fails, or the half-close grace ends.
    fn cgi_watch_client(&mut self, sh: &mut Shared) -> io::Result<bool> {
        let State::Cgi(run) = &self.state else {
            return Ok(false);
        };
        if run.body_left > 0 {
            return Ok(false);
        }
        self.watch_client(sh)
    }

    /// Moves request body bytes from the client into the script's buffer.
    pub(super) fn cgi_read_body(&mut self, sh: &mut Shared) -> io::Result<bool> {
        let State::Cgi(run) = &mut self.state else {
            return Ok(false);
        };
        let room = CGI_BUFFER.saturating_sub(run.to_child.len());
        if run.body_left == 0 || room == 0 {
            return Ok(false);
        }
        let want = room.min(usize::try_from(run.body_left).unwrap_or(usize::MAX));
        if !self.inbuf.is_empty() {
            let take = want.min(self.inbuf.len());
            run.to_child.extend_from_slice(&self.inbuf[..take]);
            self.inbuf.drain(..take);
            run.body_left -= take as u64;
            return Ok(true);
        }
        if !self.readable {
            return Ok(false);
        }
        let want = want.min(sh.rbuf.len());
        match self.socket.read(&mut sh.rbuf[..want]) {
            Ok(0) => {
                // The client gave up in the middle of its upload.
                self.peer_closed = true;
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            Ok(n) => {
                run.to_child.extend_from_slice(&sh.rbuf[..n]);
                run.body_left -= n as u64;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Writes buffered request body to the script; closes its stdin once
    /// the whole body is through, so the script sees the end of its input.
    pub(super) fn cgi_feed_stdin(&mut self) -> bool {
        let State::Cgi(run) = &mut self.state else {
            return false;
        };
        let Some(stdin) = &mut run.stdin else {
            return false;
        };
        if !run.to_child.is_empty() && run.stdin_ready {
            match stdin.write(&run.to_child) {
                Ok(n) => {
                    run.to_child.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => run.stdin_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The script stopped reading: skip the rest of the body.
                    run.to_child.clear();
                    self.skip = Skip::from(BodyFraming::Length(run.body_left));
                    run.body_left = 0;
                    run.stdin = None;
                    return true;
                }
            }
            if run.to_child.is_empty() && run.body_left == 0 {
                run.stdin = None;
            }
            return true;
        }
        if run.to_child.is_empty() && run.body_left == 0 {
            run.stdin = None;
            return true;
        }
        false
    }

    /// Reads what the script printed: its header first, then the body,
    /// framed for the client.
    pub(super) fn cgi_read_output(&mut self, sh: &mut Shared) -> io::Result<bool> {
        let State::Cgi(run) = &mut self.state else {
            return Ok(false);
        };
        let Some(stdout) = &mut run.stdout else {
            return Ok(false);
        };
        if !run.stdout_ready {
            return Ok(false);
        }
        let n = match stdout.read(&mut sh.rbuf[..CGI_BUFFER]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                run.stdout_ready = false;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(_) => 0,
        };
        if n == 0 {
            self.cgi_output_ended(sh);
            return Ok(true);
        }
        *sh.turn_bytes += n;
        if run.framing != Framing::Pending {
            emit_body(run, &mut self.out, &sh.rbuf[..n]);
            return Ok(true);
        }
        run.head.extend_from_slice(&sh.rbuf[..n]);
        match cgi::parse_output_head(&run.head) {
            OutputParse::Partial => Ok(true),
            OutputParse::Invalid(why) => {
                let raw_line = std::mem::take(&mut run.raw_line);
                let message = format!("Bad CGI output: {why}");
                self.cgi_failed(502, &message, &raw_line, sh);
                Ok(true)
            }
            OutputParse::Complete(head) if head.local_redirect.is_some() => {
                let target = head.local_redirect.unwrap_or_default();
                self.cgi_local_redirect(&target, sh);
                Ok(true)
            }
            OutputParse::Complete(head) => {
                let run_head = std::mem::take(&mut run.head);
                self.cgi_send_head(&head, sh);
                if let State::Cgi(run) = &mut self.state {
                    emit_body(run, &mut self.out, &run_head[head.len..]);
                }
                Ok(true)
            }
        }
    }

    /// The script's output has ended (or is held open only by something it
    /// started, after it exited): the response ends here.
    pub(super) fn cgi_output_ended(&mut self, sh: &mut Shared) {
        let State::Cgi(run) = &mut self.state else {
            return;
        };
        run.stdout = None;
        match run.framing {
            Framing::Pending => {
                let raw_line = std::mem::take(&mut run.raw_line);
                self.cgi_failed(502, "CGI script did not send a valid header", &raw_line, sh);
            }
            Framing::Chunked => self.out.extend_from_slice(b"0\r\n\r\n"),
            // Shorter than it promised: only closing can tell the client.
            Framing::Length(left) if left > 0 => run.close = true,
            Framing::UntilClose => run.close = true,
            Framing::Length(_) | Framing::Discard => {}
        }
    }

    /// RFC 3875 6.2.2: a script answering `Location: /path` asks the server
    /// to serve that path in its place. The script's work is done: its
    /// pipes are dropped (the reactor reaps it) and the path is answered as
    /// a GET (or HEAD) would be, except that it may not run another script.
    pub(super) fn cgi_local_redirect(&mut self, target: &[u8], sh: &mut Shared) {
        let State::Cgi(run) = std::mem::replace(&mut self.state, State::Closing) else {
            return;
        };
        self.skip = Skip::from(BodyFraming::Length(run.body_left));
        let method: &[u8] = if run.head_only { b"HEAD" } else { b"GET" };
        let version: &[u8] = if run.chunked_ok {
            b"HTTP/1.1"
        } else {
            b"HTTP/1.0"
        };
        let head = OwnedHead::synthetic(method, target, version, self.peer);
        let crate::server::Dispatch::Loop(handler) = sh.handler else {
            self.state = State::Cgi(run);
            let raw_line = self.child_raw_line();
            self.cgi_failed(
                502,
                "CGI local redirect on a threaded server",
                &raw_line,
                sh,
            );
            return;
        };
        let handler = std::rc::Rc::clone(handler);
        let before = sh.wbuf.len();
        let outcome = head.with_req(|req| {
            let mut ex = sh.exchange(req, !run.close);
            handler.handle(&mut ex);
            ex.finish()
        });
        let Some(mut outcome) = outcome else {
            return;
        };
        if !matches!(
            outcome.next,
            Next::Nothing | Next::File { .. } | Next::Stream(_) | Next::LocalStream(_)
        ) {
            // Another script, or an answer that would come later: not in
            // place of a script's output.
            sh.wbuf.truncate(before);
            self.state = State::Cgi(run);
            let raw_line = self.child_raw_line();
            self.cgi_failed(502, "CGI local redirect to another script", &raw_line, sh);
            return;
        }
        outcome.close |= run.close;
        let info = ReqInfo {
            raw_line: &run.raw_line,
            framing: BodyFraming::NONE,
            method_head: run.head_only,
            version: if run.chunked_ok {
                Version::HTTP_11
            } else {
                Version::HTTP_10
            },
        };
        self.proceed_public(outcome, info, sh);
        // Written where answers to requests are gathered; sent from here.
        self.out.extend_from_slice(sh.wbuf);
        sh.wbuf.clear();
    }

    pub(super) fn child_raw_line(&self) -> Vec<u8> {
        match &self.state {
            State::Cgi(run) => run.raw_line.clone(),
            _ => Vec::new(),
        }
    }

    /// Writes the response head for a script's parsed output header and
    /// chooses how the body is framed.
    pub(super) fn cgi_send_head(&mut self, head: &cgi::OutputHead, sh: &mut Shared) {
        let State::Cgi(run) = &mut self.state else {
            return;
        };
        let proto = sh.config.protocol.as_str();
        let status = head.status;
        run.framing = if run.head_only || !status_has_body(status) {
            Framing::Discard
        } else if let Some(len) = head.content_length {
            Framing::Length(len)
        } else if run.chunked_ok && !run.close {
            Framing::Chunked
        } else {
            run.close = true;
            Framing::UntilClose
        };
        let reason: &[u8] = match (&head.reason, status) {
            (Some(r), _) => r,
            // Python's phrase for every CGI response.
            (None, 200) => b"Script output follows",
            (None, code) => crate::proto::status::phrase(code).as_bytes(),
        };
        let date = sh.clock.http_date();
        let mut out = Head::status_line_only(&mut self.out, proto, status, reason, false);
        out.header("Server", sh.config.server.as_bytes());
        out.header("Date", date);
        for (name, value) in &head.headers {
            if let Ok(name) = std::str::from_utf8(name) {
                out.header(name, value);
            }
        }
        if run.announce_keep_alive && !run.close {
            out.header("Connection", b"keep-alive");
        }
        out.raw(&sh.config.extra_headers);
        match run.framing {
            Framing::Length(len) => {
                out.header_num("Content-Length", len);
            }
            // 205 must say its body is empty (RFC 9110 15.3.6); 204 and 304
            // carry no length at all (8.6); a HEAD answer tells the length
            // the script gave for GET.
            Framing::Discard if status == 205 => {
                out.header_num("Content-Length", 0);
            }
            Framing::Discard if matches!(status, 204 | 304) => {}
            Framing::Discard => {
                if let Some(len) = head.content_length {
                    out.header_num("Content-Length", len);
                }
            }
            Framing::Chunked => {
                out.header("Transfer-Encoding", b"chunked");
            }
            Framing::UntilClose | Framing::Pending => {}
        }
        if run.close && sh.config.protocol == Protocol::Http11 {
            out.header("Connection", b"close");
        }
        out.finish();
        sh.log
            .request(sh.clock, self.peer.ip(), &run.raw_line, status);
    }
}

/// Appends script output to the client's buffer, framed as chosen.
fn emit_body(run: &mut CgiRun, out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    match &mut run.framing {
        Framing::Length(left) => {
            let take = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            out.extend_from_slice(&data[..take]);
            *left -= take as u64;
            if take < data.len() {
                // More than the script promised: the extra cannot be framed.
                run.close = true;
            }
        }
        Framing::Chunked => {
            let _ = write!(out, "{:x}\r\n", data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Framing::UntilClose => out.extend_from_slice(data),
        Framing::Discard | Framing::Pending => {}
    }
}
