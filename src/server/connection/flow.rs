//! From a parsed head to the handler and back: the checks every request
//! passes, the [`Exchange`] the handler answers through, and what the
//! connection does with the answer (send it, stream a body, read the
//! request body, wait for a worker, run a script).

use super::{Connection, Progress, Shared, Skip, State, Step, keep_alive};
use crate::handler::{BodyHandler, Exchange, ExpectContinue, Next, Outcome, Poll, Protocol, Req};
use crate::proto::chunked::ChunkedDecoder;
use crate::proto::request::{
    self, BodyFraming, EMPTY_HEADER, FEW_HEADER_LINES, Rejection, Version,
};
use crate::server::Dispatch;
use crate::server::workers::{Answer, Job, WorkerNext};
use std::io::{self, Read};
use std::net::SocketAddr;

/// A request head copied out of the shared buffers, for an answer that
/// comes later (a body being read, a worker, a function polled): parsed
/// again, on any thread, when it is needed.
#[derive(Clone)]
pub struct OwnedHead {
    bytes: Vec<u8>,
    line_end: usize,
    peer: SocketAddr,
    framing: BodyFraming,
}

impl OwnedHead {
    pub(crate) fn new(
        head: &[u8],
        line_end: usize,
        peer: SocketAddr,
        framing: BodyFraming,
    ) -> OwnedHead {
        OwnedHead {
            bytes: head.to_vec(),
            line_end,
            peer,
            framing,
        }
    }

    /// A head of our own making: `METHOD target VERSION` and no headers.
    pub(crate) fn synthetic(
        method: &[u8],
        target: &[u8],
        version: &[u8],
        peer: SocketAddr,
    ) -> OwnedHead {
        let mut bytes = Vec::with_capacity(target.len() + 24);
        bytes.extend_from_slice(method);
        bytes.push(b' ');
        bytes.extend_from_slice(target);
        bytes.push(b' ');
        bytes.extend_from_slice(version);
        bytes.extend_from_slice(b"\r\n");
        let line_end = bytes.len();
        bytes.extend_from_slice(b"\r\n");
        OwnedHead {
            bytes,
            line_end,
            peer,
            framing: BodyFraming::NONE,
        }
    }

    /// Calls `f` with the request this head holds.
    pub(crate) fn with_req<T>(&self, f: impl FnOnce(Req) -> T) -> Option<T> {
        let line = &self.bytes[..self.line_end];
        let parsed = request::parse_request_line(line).ok()??;
        let (mut few, mut many) = ([EMPTY_HEADER; FEW_HEADER_LINES], None);
        let headers =
            request::parse_headers_into(&self.bytes[self.line_end..], &mut few, &mut many).ok()?;
        Some(f(Req {
            peer: self.peer,
            raw_line: request::trim_line_end(line),
            line: parsed,
            headers,
            framing: self.framing,
        }))
    }

    fn raw_line(&self) -> &[u8] {
        request::trim_line_end(&self.bytes[..self.line_end])
    }

    /// What the connection needs of this request (its line parsed again).
    fn info(&self) -> ReqInfo<'_> {
        let line = request::parse_request_line(&self.bytes[..self.line_end])
            .ok()
            .flatten();
        ReqInfo {
            raw_line: self.raw_line(),
            framing: self.framing,
            method_head: line.is_some_and(|l| l.method == b"HEAD"),
            version: line.map_or(Version::HTTP_10, |l| l.version),
        }
    }
}

/// A request body being read for the handler.
pub struct BodyRead {
    head: OwnedHead,
    keep_alive: bool,
    decoder: Decoder,
    sink: Sink,
}

enum Decoder {
    Length(u64),
    Chunked(ChunkedDecoder),
}

enum Sink {
    /// `read_body`: gathered whole, then `then`.
    Whole {
        buf: HeldBody,
        limit: u64,
        then: crate::handler::BodyThen,
    },
    /// `read_body_with`: each piece to the handler's sink.
    With(Box<dyn BodyHandler>),
    /// A threaded server's request: gathered whole (up to the server's
    /// limit), then the handler runs on a worker with it.
    ForWorker {
        buf: HeldBody,
        limit: u64,
        job: Box<dyn FnOnce(&mut Exchange) + Send>,
    },
}

/// Request bodies the loop holds whole for handlers (`read_body`, and
/// bodies read for workers), all connections together. Each has its own
/// limit (`max_body`, or the handler's); this one keeps many of them at
/// once from adding up to more than the server should hold: past it, 503.
pub struct BodyMemory {
    held: std::cell::Cell<usize>,
    limit: usize,
}

impl BodyMemory {
    pub fn new(limit: usize) -> BodyMemory {
        BodyMemory {
            held: std::cell::Cell::new(0),
            limit,
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.get()
    }
}

/// A body being gathered whole, counted in the server's [`BodyMemory`]
/// until it is handed over or dropped.
struct HeldBody {
    buf: Vec<u8>,
    memory: std::rc::Rc<BodyMemory>,
}

impl HeldBody {
    fn new(memory: &std::rc::Rc<BodyMemory>) -> HeldBody {
        HeldBody {
            buf: Vec::new(),
            memory: std::rc::Rc::clone(memory),
        }
    }

    fn push(&mut self, piece: &[u8], limit: u64) -> Result<(), crate::handler::BodyError> {
        if self.buf.len() as u64 + piece.len() as u64 > limit {
            return Err(crate::handler::BodyError::too_large());
        }
        let held = self.memory.held.get() + piece.len();
        if held > self.memory.limit {
            return Err(crate::handler::BodyError::new(
                503,
                "Server busy: too many request bodies held at once",
            ));
        }
        self.memory.held.set(held);
        self.buf.extend_from_slice(piece);
        Ok(())
    }

    /// The body, no longer counted: the handler has it now.
    fn into_vec(mut self) -> Vec<u8> {
        let held = self.memory.held.get().saturating_sub(self.buf.len());
        self.memory.held.set(held);
        std::mem::take(&mut self.buf)
    }
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        let held = self.memory.held.get().saturating_sub(self.buf.len());
        self.memory.held.set(held);
    }
}

/// A handler's function, called each turn of the loop until it answers.
pub struct PollWait {
    head: OwnedHead,
    keep_alive: bool,
    f: Box<dyn FnMut(&mut Exchange) -> Poll>,
}

/// Waiting for a worker thread's answer.
pub struct DeferWait {
    head: OwnedHead,
    /// Set when nobody waits any more (the answer came, timed out, or the
    /// client left): a job still queued is then dropped unrun.
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for DeferWait {
    fn drop(&mut self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Where the request's body stands once the handler has answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyFate {
    /// Still unread: step over it before the next request.
    Unread,
    /// Taken (read for the handler, or given to a script).
    Taken,
}

impl Connection {
    /// Answers one complete head: checks what every request must pass,
    /// then gives it to the handler. `head` holds the request line (ending
    /// at `line_end`) and the header block. False when the connection must
    /// stop reading requests (it was refused, or closes).
    pub(super) fn dispatch(&mut self, head: &[u8], line_end: usize, sh: &mut Shared) {
        let raw_line = request::trim_line_end(&head[..line_end]);
        let line = match request::parse_request_line(&head[..line_end]) {
            Ok(Some(line)) => line,
            // A blank line, which Python answers by closing.
            Ok(None) => {
                self.state = State::Closing;
                return;
            }
            Err(rejection) => {
                self.reject(&rejection, false, raw_line, sh);
                return;
            }
        };
        if let Some(rejection) = super::refuse_line(&line, sh.config) {
            self.reject(&rejection, false, raw_line, sh);
            return;
        }
        let (mut few, mut many) = ([EMPTY_HEADER; FEW_HEADER_LINES], None);
        let checked = request::parse_headers_into(&head[line_end..], &mut few, &mut many).and_then(
            |headers| {
                let framing = request::body_framing(line.version, headers)?;
                if sh.config.require_host
                    && line.version >= Version::HTTP_11
                    && request::header(headers, "Host").is_none()
                {
                    return Err(Rejection {
                        status: 400,
                        message: Some("Missing Host header".into()),
                        explain: None,
                        before_version: false,
                    });
                }
                Ok((headers, framing))
            },
        );
        let (headers, framing) = match checked {
            Ok(found) => found,
            Err(rejection) => {
                // Where this request ends is in doubt: answer and close, so
                // nothing after it is read as a request.
                self.reject(&rejection, line.method == b"HEAD", raw_line, sh);
                return;
            }
        };
        let keep = keep_alive(sh.config.protocol, &line, headers);
        let expects_continue = expects_continue(sh.config.protocol, &line, headers);
        if expects_continue && sh.config.expect_continue == ExpectContinue::Always {
            sh.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let req = Req {
            peer: self.peer,
            raw_line,
            line,
            headers,
            framing,
        };
        self.answered = true;
        if let Dispatch::Threaded(handler) = sh.handler {
            let handler = std::sync::Arc::clone(handler);
            let job: Box<dyn FnOnce(&mut Exchange) + Send> = Box::new(move |r| handler.handle(r));
            let owned = OwnedHead::new(head, line_end, self.peer, framing);
            if framing == BodyFraming::NONE {
                self.defer(owned, keep, None, job, sh);
            } else {
                if expects_continue && sh.config.expect_continue == ExpectContinue::WhenRead {
                    sh.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                let limit = sh.config.max_body;
                self.start_body(
                    Box::new(BodyRead {
                        head: owned,
                        keep_alive: keep,
                        decoder: Decoder::new(framing),
                        sink: Sink::ForWorker {
                            buf: HeldBody::new(sh.body_memory),
                            limit,
                            job,
                        },
                    }),
                    sh,
                );
            }
            return;
        }
        let Dispatch::Loop(handler) = sh.handler else {
            return;
        };
        let handler = std::rc::Rc::clone(handler);
        let mut ex = sh.exchange(req, keep);
        handler.handle(&mut ex);
        let outcome = ex.finish();
        let owned = || OwnedHead::new(head, line_end, self.peer, framing);
        let later = match &outcome.next {
            Next::ReadBody { .. } | Next::ReadBodyWith(_) | Next::Poll(_) | Next::Defer(_) => {
                Some(owned())
            }
            _ => None,
        };
        self.proceed(outcome, req_info(&req), later, expects_continue, sh);
    }

    /// [`Connection::proceed`] for an answer with nothing to come later.
    pub(super) fn proceed_public(&mut self, outcome: Outcome, info: ReqInfo, sh: &mut Shared) {
        self.proceed(outcome, info, None, false, sh);
    }

    /// Acts on a handler's outcome: logs it, and moves to the state that
    /// sends (or makes) the rest. `later` is the head, kept for answers
    /// that come later.
    fn proceed(
        &mut self,
        outcome: Outcome,
        info: ReqInfo,
        later: Option<OwnedHead>,
        expects_continue: bool,
        sh: &mut Shared,
    ) {
        let Outcome {
            status,
            close,
            error,
            next,
            chunked,
            bodyless,
            stream_length,
        } = outcome;
        let log_it = |sh: &mut Shared, peer: SocketAddr| {
            if let Some(message) = &error {
                sh.log.error(sh.clock, peer.ip(), status, message);
            }
            sh.log.request(sh.clock, peer.ip(), info.raw_line, status);
        };
        let continue_100 = |sh: &mut Shared| {
            if expects_continue && sh.config.expect_continue == ExpectContinue::WhenRead {
                sh.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        };
        let mut fate = BodyFate::Unread;
        match next {
            Next::ReadBody { limit, then } => {
                let Some(head) = later else { return };
                continue_100(sh);
                self.start_body(
                    Box::new(BodyRead {
                        head,
                        keep_alive: !close,
                        decoder: Decoder::new(info.framing),
                        sink: Sink::Whole {
                            buf: HeldBody::new(sh.body_memory),
                            limit,
                            then,
                        },
                    }),
                    sh,
                );
            }
            Next::ReadBodyWith(sink) => {
                let Some(head) = later else { return };
                continue_100(sh);
                self.start_body(
                    Box::new(BodyRead {
                        head,
                        keep_alive: !close,
                        decoder: Decoder::new(info.framing),
                        sink: Sink::With(sink),
                    }),
                    sh,
                );
            }
            Next::Poll(f) => {
                let Some(head) = later else { return };
                self.skip = Skip::from(info.framing);
                self.state = State::Poll(Box::new(PollWait {
                    head,
                    keep_alive: !close,
                    f,
                }));
                // A poll that never answers is given up as deferred work is.
                self.deadline = sh.clock.deadline(sh.defer_timeout);
            }
            Next::Defer(job) => {
                let Some(head) = later else { return };
                if info.framing == BodyFraming::NONE {
                    self.defer(head, !close, None, job, sh);
                } else {
                    // The work may read the body: the loop reads it first
                    // (up to the server's max_body), as for a threaded
                    // server, so `read_body` works on the worker.
                    continue_100(sh);
                    let limit = sh.config.max_body;
                    let read = BodyRead {
                        head,
                        keep_alive: !close,
                        decoder: Decoder::new(info.framing),
                        sink: Sink::ForWorker {
                            buf: HeldBody::new(sh.body_memory),
                            limit,
                            job,
                        },
                    };
                    self.start_body(Box::new(read), sh);
                }
            }
            Next::Cgi(command) => {
                if command.with_body {
                    fate = BodyFate::Taken;
                    continue_100(sh);
                }
                let body_len = match info.framing {
                    BodyFraming::Length(n) => n,
                    // A script needs CONTENT_LENGTH; the handler refuses
                    // chunked uploads first (411).
                    BodyFraming::Chunked => 0,
                };
                if fate == BodyFate::Unread {
                    self.skip = Skip::from(info.framing);
                }
                self.start_cgi(*command, &info, body_len, close, sh);
            }
            Next::Nothing => {
                log_it(sh, self.peer);
                self.clean_close = error.is_none() && info.framing == BodyFraming::NONE;
                self.after_answer(close, fate, info.framing, sh);
            }
            Next::File { file, offset, len } => {
                log_it(sh, self.peer);
                self.clean_close = error.is_none() && info.framing == BodyFraming::NONE;
                if bodyless || len == 0 {
                    self.after_answer(close, fate, info.framing, sh);
                } else {
                    self.skip_unread(fate, info.framing);
                    self.state = State::File {
                        file,
                        offset,
                        end: offset + len,
                        close,
                    };
                    self.deadline = sh.clock.deadline(sh.timeouts.send);
                    self.progress = 0;
                }
            }
            Next::OwnedFile { file, offset, len } => {
                let next = Next::File {
                    file: std::rc::Rc::new(file),
                    offset,
                    len,
                };
                let outcome = Outcome {
                    status,
                    close,
                    error,
                    next,
                    chunked,
                    bodyless,
                    stream_length,
                };
                self.proceed(outcome, info, later, false, sh);
            }
            Next::Stream(source) => {
                let source: Box<dyn crate::handler::BodySource> = source;
                log_it(sh, self.peer);
                let framing = (chunked, stream_length);
                self.stream_body(source, framing, close, bodyless, fate, info.framing, sh);
            }
            Next::LocalStream(source) => {
                log_it(sh, self.peer);
                let framing = (chunked, stream_length);
                self.stream_body(source, framing, close, bodyless, fate, info.framing, sh);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn stream_body(
        &mut self,
        source: Box<dyn crate::handler::BodySource>,
        (chunked, left): (bool, Option<u64>),
        close: bool,
        bodyless: bool,
        fate: BodyFate,
        framing: BodyFraming,
        sh: &mut Shared,
    ) {
        self.clean_close = framing == BodyFraming::NONE;
        if bodyless {
            return self.after_answer(close, fate, framing, sh);
        }
        self.skip_unread(fate, framing);
        self.state = State::Stream {
            source,
            chunked,
            close,
            left,
        };
        self.deadline = sh.clock.deadline(sh.timeouts.send);
        self.progress = 0;
    }

    /// The body of the request, if nobody read it, is stepped over before
    /// the next request.
    fn skip_unread(&mut self, fate: BodyFate, framing: BodyFraming) {
        if fate == BodyFate::Unread {
            self.skip = Skip::from(framing);
        }
    }

    /// The answer is written: the connection ends, or waits for the next
    /// request once the unread body is stepped over.
    fn after_answer(&mut self, close: bool, fate: BodyFate, framing: BodyFraming, sh: &Shared) {
        if close {
            self.state = State::Closing;
            return;
        }
        self.skip_unread(fate, framing);
        self.await_request(sh);
    }

    /// Hands work to a worker thread; a full pool is 503 at once.
    fn defer(
        &mut self,
        head: OwnedHead,
        keep_alive: bool,
        body: Option<Vec<u8>>,
        work: Box<dyn FnOnce(&mut Exchange) + Send>,
        sh: &mut Shared,
    ) {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let job = Job {
            key: self.key,
            generation: self.generation,
            cancelled: std::sync::Arc::clone(&cancel),
            head: head.clone(),
            body,
            keep_alive,
            work,
            config: std::sync::Arc::clone(sh.config),
            date: {
                let mut d = [b' '; 29];
                d.copy_from_slice(&sh.clock.http_date()[..29]);
                d
            },
            now: sh.clock.unix_secs(),
        };
        let submitted = match sh.pool.as_deref_mut() {
            Some(pool) => pool.submit(job).map_err(|_| ()),
            None => Err(()),
        };
        if submitted.is_err() {
            return self.answer_error(&head, 503, "Server busy: every worker is taken", sh);
        }
        self.state = State::Deferred(Box::new(DeferWait { head, cancel }));
        self.deadline = sh.clock.deadline(sh.defer_timeout);
    }

    /// An error answer for a request whose head is kept, and the
    /// connection then closes.
    fn answer_error(&mut self, head: &OwnedHead, code: u16, message: &str, sh: &mut Shared) {
        let info_line = head.raw_line().to_vec();
        let outcome = head.with_req(|req| {
            let mut ex = sh.error_exchange(req, None);
            ex.send_error(code, Some(message), None);
            ex.finish()
        });
        let status = outcome.as_ref().map_or(code, |o| o.status);
        sh.log.error(sh.clock, self.peer.ip(), status, message);
        sh.log.request(sh.clock, self.peer.ip(), &info_line, status);
        self.clean_close = false;
        self.state = State::Closing;
    }

    /// A worker's answer for this connection.
    pub(crate) fn answered(&mut self, answer: Answer, sh: &mut Shared) -> Progress {
        let State::Deferred(wait) = std::mem::replace(&mut self.state, State::Closing) else {
            return Progress::Wait;
        };
        sh.wbuf.extend_from_slice(&answer.bytes);
        let next = match answer.next {
            WorkerNext::Nothing => Next::Nothing,
            WorkerNext::File { file, offset, len } => Next::File {
                file: std::rc::Rc::new(file),
                offset,
                len,
            },
            WorkerNext::Stream(s) => Next::Stream(s),
            WorkerNext::Cgi(c) => Next::Cgi(c),
        };
        // The body was taken before the job was queued, or is skipped by
        // the skip set then: nothing more to step over here.
        let info = ReqInfo {
            framing: BodyFraming::NONE,
            ..wait.head.info()
        };
        let outcome = Outcome {
            status: answer.status,
            close: answer.close,
            error: answer.error,
            next,
            chunked: answer.chunked,
            bodyless: answer.bodyless,
            stream_length: answer.stream_length,
        };
        self.proceed(outcome, info, None, false, sh);
        if self.flush_wbuf(sh).is_err() {
            return Progress::Close;
        }
        self.pump(sh)
    }

    /// While a worker works: the client is watched, so one that leaves
    /// costs nothing more (its answer is dropped when it comes).
    pub(super) fn deferred_step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if self.out_pos < self.out.len() && self.writable {
            return self.send_out(sh);
        }
        match self.watch_client(sh) {
            Ok(true) => Ok(Step::Continue),
            Ok(false) => Ok(Step::Blocked),
            Err(e) => Err(e),
        }
    }

    /// An upload stalled: 408.
    pub(super) fn body_timed_out(&mut self, sh: &mut Shared) {
        let State::Body(read) = std::mem::replace(&mut self.state, State::Closing) else {
            return;
        };
        self.answer_error(&read.head, 408, "Request body timed out", sh);
    }

    /// A polled function never answered: 504.
    pub(super) fn poll_timed_out(&mut self, sh: &mut Shared) {
        let State::Poll(wait) = std::mem::replace(&mut self.state, State::Closing) else {
            return;
        };
        self.answer_error(&wait.head, 504, "Polled answer timed out", sh);
        let _ = self.flush_wbuf(sh);
    }

    /// A worker never answered: 504.
    pub(super) fn deferred_timed_out(&mut self, sh: &mut Shared) {
        let State::Deferred(wait) = std::mem::replace(&mut self.state, State::Closing) else {
            return;
        };
        self.answer_error(&wait.head, 504, "Deferred work timed out", sh);
        let _ = self.flush_wbuf(sh);
    }

    /// Calls a polled function; once it answers, goes on with the answer.
    pub(super) fn poll_step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        let State::Poll(wait) = &mut self.state else {
            return Ok(Step::Continue);
        };
        let before = sh.wbuf.len();
        let keep = wait.keep_alive;
        let f = &mut wait.f;
        let result = wait.head.with_req(|req| {
            let mut ex = sh.exchange(req, keep);
            match f(&mut ex) {
                Poll::Pending => None,
                Poll::Ready => Some(ex.finish()),
            }
        });
        match result {
            None => Ok(Step::Done),
            Some(None) => {
                // Nothing of a pending call goes out.
                sh.wbuf.truncate(before);
                Ok(Step::Later)
            }
            Some(Some(outcome)) => {
                let State::Poll(wait) = std::mem::replace(&mut self.state, State::Closing) else {
                    return Ok(Step::Continue);
                };
                // The body was set to be skipped when the poll began.
                let info = ReqInfo {
                    framing: BodyFraming::NONE,
                    ..wait.head.info()
                };
                self.proceed(outcome, info, Some(wait.head.clone()), false, sh);
                self.flush_wbuf(sh)
            }
        }
    }

    /// Starts reading a request body. An upload must keep moving: at
    /// least `MIN_PROGRESS` bytes per send timeout, or it is answered 408.
    fn start_body(&mut self, read: Box<BodyRead>, sh: &Shared) {
        self.state = State::Body(read);
        self.deadline = sh.clock.deadline(sh.timeouts.send);
        self.progress = 0;
    }

    /// Reads the request body for the handler, a piece at a time: from
    /// what came with the head first, then from the socket, decoded, to
    /// the sink; at its end, the handler answers.
    pub(super) fn body_step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if self.out_pos < self.out.len() {
            return self.send_out(sh);
        }
        let State::Body(read) = &mut self.state else {
            return Ok(Step::Continue);
        };
        let from_inbuf = !self.inbuf.is_empty();
        let n = if from_inbuf {
            0
        } else {
            if !self.readable {
                return Ok(Step::Blocked);
            }
            match self.socket.read(sh.rbuf) {
                Ok(0) => {
                    // The client gave up in the middle of its upload.
                    self.peer_closed = true;
                    return Ok(Step::Done);
                }
                Ok(n) => {
                    if n < sh.rbuf.len() && !self.read_closed {
                        self.readable = false;
                    }
                    self.progress += n;
                    if self.progress >= super::MIN_PROGRESS {
                        self.deadline = sh.clock.deadline(sh.timeouts.send);
                        self.progress = 0;
                    }
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(Step::Blocked);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Step::Continue),
                Err(e) => return Err(e),
            }
        };
        let input: &[u8] = if from_inbuf {
            &self.inbuf
        } else {
            &sh.rbuf[..n]
        };
        let mut refused = None;
        let used = match read.decoder.decode(input, |piece| {
            if refused.is_none() {
                refused = read.sink.take(piece).err();
            }
        }) {
            Ok(used) => used,
            Err(_) => {
                refused = Some(crate::handler::BodyError::new(400, "Bad chunked body"));
                input.len()
            }
        };
        let leftover = input[used..].to_vec();
        if from_inbuf {
            self.inbuf.drain(..used);
            if self.inbuf.is_empty() {
                // The body that came with the head is taken: its room is
                // given back, not held against the input budget while
                // the rest of the upload comes.
                self.inbuf = Vec::new();
            }
        } else if !leftover.is_empty() {
            // What came after the body: the next request.
            self.inbuf = leftover;
        }
        if let Some(e) = refused {
            let State::Body(read) = std::mem::replace(&mut self.state, State::Closing) else {
                return Ok(Step::Continue);
            };
            self.answer_error(&read.head, e.status, &e.message, sh);
            return self.flush_wbuf(sh);
        }
        if !read.decoder.is_done() {
            return Ok(Step::Continue);
        }
        let State::Body(read) = std::mem::replace(&mut self.state, State::Closing) else {
            return Ok(Step::Continue);
        };
        let BodyRead {
            head,
            keep_alive,
            sink,
            ..
        } = *read;
        if let Sink::ForWorker { buf, job, .. } = sink {
            self.defer(head, keep_alive, Some(buf.into_vec()), job, sh);
            return self.flush_wbuf(sh);
        }
        let result = head.with_req(|req| {
            let mut ex = sh.exchange(req, keep_alive);
            match sink {
                Sink::Whole { buf, then, .. } => then(&mut ex, buf.into_vec()),
                Sink::With(sink) => sink.end(&mut ex),
                Sink::ForWorker { .. } => {}
            }
            ex.finish()
        });
        let Some(outcome) = result else {
            return Ok(Step::Done);
        };
        // The body is read: nothing to step over.
        let info = ReqInfo {
            framing: BodyFraming::NONE,
            ..head.info()
        };
        let later = match &outcome.next {
            Next::ReadBody { .. } | Next::ReadBodyWith(_) | Next::Poll(_) | Next::Defer(_) => {
                Some(head.clone())
            }
            _ => None,
        };
        self.proceed(outcome, info, later, false, sh);
        self.flush_wbuf(sh)
    }
}

impl Decoder {
    fn new(framing: BodyFraming) -> Decoder {
        match framing {
            BodyFraming::Length(n) => Decoder::Length(n),
            BodyFraming::Chunked => Decoder::Chunked(ChunkedDecoder::new()),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Decoder::Length(left) => *left == 0,
            Decoder::Chunked(d) => d.is_done(),
        }
    }

    /// Decodes from `input`, handing the body's bytes to `data`; returns
    /// how many input bytes belonged to the body.
    fn decode(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, crate::proto::chunked::ChunkedError> {
        match self {
            Decoder::Length(left) => {
                let take = (*left).min(input.len() as u64) as usize;
                data(&input[..take]);
                *left -= take as u64;
                Ok(take)
            }
            Decoder::Chunked(d) => d.decode(input, data),
        }
    }
}

impl Sink {
    fn take(&mut self, piece: &[u8]) -> Result<(), crate::handler::BodyError> {
        match self {
            Sink::Whole { buf, limit, .. } | Sink::ForWorker { buf, limit, .. } => {
                buf.push(piece, *limit)
            }
            Sink::With(sink) => sink.data(piece),
        }
    }
}

/// What the connection needs of a request once its handler has answered.
#[derive(Clone, Copy)]
pub(crate) struct ReqInfo<'a> {
    pub raw_line: &'a [u8],
    pub framing: BodyFraming,
    pub method_head: bool,
    pub version: Version,
}

fn req_info<'a>(req: &Req<'a>) -> ReqInfo<'a> {
    ReqInfo {
        raw_line: req.raw_line,
        framing: req.framing,
        method_head: req.line.method == b"HEAD",
        version: req.line.version,
    }
}

/// The client asked for `100 Continue` and may have it.
fn expects_continue(
    protocol: Protocol,
    line: &request::RequestLine,
    headers: &[httparse::Header],
) -> bool {
    protocol == Protocol::Http11
        && line.version >= Version::HTTP_11
        && request::header(headers, "Expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"))
}
