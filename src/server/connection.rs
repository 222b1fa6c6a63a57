//! One client connection: a state machine driven by socket readiness.
//!
//! The connection owns its socket, the bytes it has received but not yet
//! used, and the bytes it could not send yet. Everything it answers comes
//! from [`respond`](crate::respond); this module only moves bytes and keeps
//! time. Buffers the reactor lends ([`Shared`]) carry the common case, so a
//! connection that is waiting for its next request owns no buffer at all.

mod cgi_run;

use crate::proto::chunked::ChunkedDecoder;
use crate::proto::request::{self, BodyFraming, EMPTY_HEADER, HeadScan, MAX_HEADER_LINES, Scan};
use crate::respond::{self, Body, Reply, Request, Scratch, Site};
use crate::server::clock::Clock;
use crate::server::log::AccessLog;
use crate::server::sys;
use cgi_run::{CgiRun, Framing};
use mio::Registry;
use mio::net::TcpStream;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Shutdown};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long each kind of wait may last.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request head to its end.
    pub head: Duration,
    /// A kept-alive connection with no request in progress.
    pub idle: Duration,
    /// A response that the client stops reading.
    pub send: Duration,
    /// Reading what a client still sends after we closed our side.
    pub linger: Duration,
    /// A CGI script's whole run.
    pub cgi: Duration,
}

/// What the reactor lends a connection while it handles an event.
pub struct Shared<'a> {
    pub site: &'a Site,
    pub clock: &'a Clock,
    pub log: &'a mut AccessLog,
    pub timeouts: &'a Timeouts,
    /// Where socket reads land first.
    pub rbuf: &'a mut [u8],
    /// Where responses are written before they are sent.
    pub wbuf: &'a mut Vec<u8>,
    pub scratch: &'a mut Scratch,
    /// Where CGI pipes are registered.
    pub registry: &'a Registry,
    /// Bulk body bytes sent this turn of the loop (see [`TURN_BUDGET`]).
    pub turn_bytes: &'a mut usize,
    /// What happened to CGI children while handling this event, for the
    /// reactor, which watches and reaps them.
    pub children: &'a mut Vec<ChildEvent>,
}

/// News about a CGI child, from a connection to the reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    /// Started for connection `key`; stopped at `deadline` if still running.
    Spawned {
        pid: u32,
        deadline: Instant,
        key: usize,
    },
    /// Stop its process group: what the script started still holds its
    /// output open after the script exited.
    StopGroup(u32),
}

/// Which of a connection's event sources a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Socket = 0,
    Stdin = 1,
    Stdout = 2,
}

impl Source {
    pub fn from_index(i: usize) -> Option<Source> {
        match i {
            0 => Some(Source::Socket),
            1 => Some(Source::Stdin),
            2 => Some(Source::Stdout),
            _ => None,
        }
    }
}

/// What the reactor should do with the connection after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Wait for the next readiness event.
    Wait,
    /// The connection used its share of work; run it again soon.
    Again,
    /// Drop the connection.
    Close,
}

enum State {
    /// Waiting for a request head; the scan remembers how far it looked.
    Head(HeadScan),
    /// Sending a file after the head, then going on as `close` says.
    File {
        file: std::rc::Rc<File>,
        offset: u64,
        end: u64,
        close: bool,
    },
    /// A CGI script is running; its output is the response.
    Cgi(Box<CgiRun>),
    /// A response made as the socket drains (a listing); then going on as
    /// `close` says.
    Produce {
        producer: Box<dyn respond::Producer>,
        close: bool,
    },
    /// The last response is being sent; then our side closes.
    Closing,
    /// Our side is closed; reading until the client closes too, so that
    /// unread request bytes do not turn into a reset that eats the response.
    Linger,
}

pub struct Connection {
    key: usize,
    socket: TcpStream,
    peer: IpAddr,
    state: State,
    /// Received bytes not yet used; starts at the current request.
    inbuf: Vec<u8>,
    /// Response bytes not yet sent, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// The request body still to skip before the next request head.
    skip: Skip,
    /// The client sent EOF.
    peer_closed: bool,
    /// Readiness as last reported and not yet used up (edge-triggered).
    readable: bool,
    writable: bool,
    /// The client's FIN has been reported: a short read no longer means
    /// the socket is drained, the EOF is still to be read.
    read_closed: bool,
    /// When the current wait times out.
    pub deadline: Instant,
    /// The current head's deadline has been set (it is not pushed back).
    head_started: bool,
    /// Since when it has been waiting for a complete request head (its
    /// accept, or the end of its last response): at the connection limit,
    /// the longest waiter makes room.
    waiting_since: Instant,
    /// Input buffer bytes counted against the server's input budget.
    pub charged: usize,
    /// Bytes sent since the send deadline last moved.
    progress: usize,
    /// At least one response has been written.
    answered: bool,
    /// The last response ends the connection for no fault of the client:
    /// no error, no request body left unread.
    clean_close: bool,
}

/// Work done per event before yielding to other connections.
const BUDGET: usize = 32;
/// Bytes of bulk body (files, listings, script output) all connections
/// together send per turn of the loop; past it, bulk senders wait for the
/// next turn, so a turn stays short (a few ms) however many downloads run
/// at once, and a new request is never stuck behind them.
pub const TURN_BUDGET: usize = 1 << 20;
/// Responses gathered before they are sent together (pipelining).
const WBUF_FLUSH: usize = 64 * 1024;
/// Bytes a client must take per send timeout to keep a response going.
const MIN_PROGRESS: usize = 32 * 1024;
/// Largest `sendfile` per call, so one download does not hog the loop.
const SENDFILE_CHUNK: usize = 1 << 20;

impl Connection {
    pub fn new(
        key: usize,
        socket: TcpStream,
        peer: IpAddr,
        clock: &Clock,
        timeouts: &Timeouts,
    ) -> Connection {
        Connection {
            key,
            socket,
            peer,
            state: State::Head(HeadScan::default()),
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            skip: Skip::Nothing,
            peer_closed: false,
            readable: false,
            writable: false,
            read_closed: false,
            deadline: clock.deadline(timeouts.idle),
            head_started: false,
            waiting_since: clock.now,
            charged: 0,
            progress: 0,
            answered: false,
            clean_close: false,
        }
    }

    /// Kept alive after answering, waiting for its next request: the
    /// connections to close first when the server is full.
    pub fn is_idle_after_a_response(&self) -> bool {
        self.answered && self.is_idle()
    }

    /// How long it has waited for a request without sending a whole head,
    /// with nothing of ours to send: `(answered before, since when)`, for
    /// choosing whom to close when the server is full (idle kept-alive
    /// connections first, then whoever has waited longest, such as a
    /// browser's pre-opened sockets and slow heads).
    pub fn waiting_for_a_request(&self) -> Option<(bool, Instant)> {
        (matches!(self.state, State::Head(_)) && self.out_pos == self.out.len())
            .then_some((self.answered && self.inbuf.is_empty(), self.waiting_since))
    }

    /// Bytes of input held (an unfinished head, pipelined requests).
    pub fn input_bytes(&self) -> usize {
        self.inbuf.capacity()
    }

    /// The server's input budget is spent and this connection holds the
    /// oldest large share of it: an unfinished head gets 431, anything
    /// else just ends.
    pub fn shed_input(&mut self, sh: &mut Shared) -> Progress {
        self.inbuf = Vec::new();
        if !matches!(self.state, State::Head(_)) || self.out_pos < self.out.len() {
            return Progress::Close;
        }
        let rejection = request::Rejection {
            status: 431,
            message: Some("Request header fields too large".into()),
            explain: Some("The server is short of memory for request heads".into()),
            before_version: false,
        };
        let reply = respond::reject(sh.site, sh.clock, &rejection, false, sh.wbuf);
        sh.log.error(
            sh.clock,
            self.peer,
            reply.status,
            "Request header fields too large",
        );
        self.state = State::Closing;
        if self.flush_wbuf(sh).is_err() {
            return Progress::Close;
        }
        self.deadline = sh.clock.deadline(sh.timeouts.linger);
        self.pump(sh)
    }

    /// No request in progress and nothing to send: safe to close at shutdown.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head(_))
            && self.inbuf.is_empty()
            && self.out_pos == self.out.len()
    }

    /// The CGI child this connection is running, if any, and whether its
    /// process group may still hold the pipes (the script has not exited,
    /// or has and something it started keeps them open).
    pub fn cgi_child(&self) -> Option<(u32, bool)> {
        match &self.state {
            State::Cgi(run) => Some((run.pid, run.holds_pipes())),
            _ => None,
        }
    }

    /// The reactor reaped `pid`. If it is this connection's script and its
    /// output is still open, whatever it started holds it: the response is
    /// given a moment, then ended (`timed_out`).
    pub fn script_exited(&mut self, pid: u32, clock: &Clock) {
        if let State::Cgi(run) = &mut self.state
            && run.pid == pid
        {
            run.exited = Some(clock.now);
            self.deadline = self.deadline.min(clock.now + cgi_run::STRAY_GRACE);
        }
    }

    /// Handles a readiness event on one of a CGI script's pipes.
    pub fn pipe_ready(&mut self, source: Source, sh: &mut Shared) -> Progress {
        if let State::Cgi(run) = &mut self.state {
            match source {
                Source::Stdin => run.stdin_ready = true,
                Source::Stdout => run.stdout_ready = true,
                Source::Socket => {}
            }
        }
        self.pump(sh)
    }

    /// Handles a readiness event.
    pub fn ready(
        &mut self,
        readable: bool,
        writable: bool,
        read_closed: bool,
        sh: &mut Shared,
    ) -> Progress {
        self.readable |= readable || read_closed;
        self.writable |= writable;
        self.read_closed |= read_closed;
        self.pump(sh)
    }

    /// Does as much work as the socket allows, up to the budget.
    pub fn pump(&mut self, sh: &mut Shared) -> Progress {
        for _ in 0..BUDGET {
            let step = match self.step(sh) {
                Ok(step) => step,
                Err(_) => return Progress::Close,
            };
            match step {
                Step::Continue => {}
                Step::Blocked => return Progress::Wait,
                Step::Yield => return Progress::Again,
                Step::Done => return Progress::Close,
            }
        }
        Progress::Again
    }

    /// One unit of work: at most one read, write or sendfile.
    fn step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if let State::Cgi(_) = self.state {
            return self.cgi_step(sh);
        }
        if self.out_pos < self.out.len() {
            return self.send_out(sh);
        }
        let bulk = matches!(self.state, State::File { .. } | State::Produce { .. });
        if bulk && *sh.turn_bytes >= TURN_BUDGET {
            // This turn's share of bulk sending is spent: the next turn.
            return Ok(Step::Yield);
        }
        match &mut self.state {
            State::Cgi(_) => self.cgi_step(sh),
            State::Head(_) => self.read_requests(sh),
            State::File { .. } => self.send_file(sh),
            State::Produce { .. } => self.produce(sh),
            State::Closing => {
                // Close at once when nothing can be in flight from the
                // client: it sent a complete request we answered cleanly and
                // its socket was drained. Otherwise close only our side and
                // read until it closes too (a lingering close), so unread
                // bytes cannot turn into a reset that destroys the answer.
                let drained = self.clean_close && self.inbuf.is_empty() && !self.readable;
                if self.peer_closed || drained {
                    return Ok(Step::Done);
                }
                let _ = self.socket.shutdown(Shutdown::Write);
                self.state = State::Linger;
                self.deadline = sh.clock.deadline(sh.timeouts.linger);
                Ok(Step::Continue)
            }
            State::Linger => {
                if !self.readable {
                    return Ok(Step::Blocked);
                }
                match self.socket.read(sh.rbuf) {
                    Ok(0) => Ok(Step::Done),
                    Ok(_) => Ok(Step::Continue),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.readable = false;
                        Ok(Step::Blocked)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Step::Continue),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Reads and answers requests, gathering the answers in `sh.wbuf`.
    fn read_requests(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if !self.inbuf.is_empty() {
            // Requests left over from an earlier read (pipelining) come first.
            let buf = std::mem::take(&mut self.inbuf);
            let used = self.handle_input(&buf, false, sh);
            self.take_back(buf, used);
            if used > 0 || !matches!(self.state, State::Head(_)) {
                return self.flush_wbuf(sh);
            }
        }
        if self.peer_closed {
            return Ok(Step::Done);
        }
        if !self.readable {
            return Ok(Step::Blocked);
        }
        let n = match self.socket.read(sh.rbuf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                return Ok(Step::Blocked);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Step::Continue),
            Err(e) => return Err(e),
        };
        if n < sh.rbuf.len() && !self.read_closed {
            // A short read drains a stream socket: the next edge will tell
            // us of new data, so skip the read that would say WouldBlock.
            self.readable = false;
        }
        if n == 0 {
            self.peer_closed = true;
            return self.end_of_input(sh);
        }
        if self.inbuf.is_empty() {
            // The common case: answer straight from the shared buffer, and
            // copy only an unfinished head into a buffer of our own.
            let rbuf = std::mem::take(&mut sh.rbuf);
            let used = self.handle_input(&rbuf[..n], false, sh);
            if used < n && self.keeps_input() {
                self.inbuf = rbuf[used..n].to_vec();
            }
            sh.rbuf = rbuf;
        } else {
            // Grown by what came, not doubled: what is held is what counts
            // against the input budget.
            self.inbuf.reserve_exact(n);
            self.inbuf.extend_from_slice(&sh.rbuf[..n]);
            let buf = std::mem::take(&mut self.inbuf);
            let used = self.handle_input(&buf, false, sh);
            self.take_back(buf, used);
        }
        self.flush_wbuf(sh)
    }

    /// Input after the current request matters only while requests are
    /// still to be answered.
    fn keeps_input(&self) -> bool {
        matches!(
            self.state,
            State::Head(_) | State::File { .. } | State::Cgi(_) | State::Produce { .. }
        )
    }

    /// Puts the unused part of `buf` back as our input buffer, freeing the
    /// allocation once it is all used: an idle connection owns no buffer.
    fn take_back(&mut self, mut buf: Vec<u8>, used: usize) {
        if used >= buf.len() || !self.keeps_input() {
            self.inbuf = Vec::new();
        } else {
            buf.drain(..used);
            self.inbuf = buf;
        }
    }

    /// The client closed its side. Python answers whatever partial head it
    /// has as if the line and head ended there; so do we, then close.
    fn end_of_input(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if self.inbuf.is_empty() || self.skip.is_active() || !matches!(self.state, State::Head(_)) {
            return if self.out_pos < self.out.len() || !matches!(self.state, State::Head(_)) {
                Ok(Step::Continue)
            } else {
                Ok(Step::Done)
            };
        }
        let mut buf = std::mem::take(&mut self.inbuf);
        if buf.last() != Some(&b'\n') {
            buf.push(b'\n');
        }
        buf.push(b'\n');
        self.state = State::Head(HeadScan::default());
        self.handle_input(&buf, true, sh);
        if matches!(self.state, State::Head(_)) {
            self.state = State::Closing;
        }
        self.flush_wbuf(sh)
    }

    /// Parses and answers as many requests from `data` as it holds; returns
    /// how many bytes were used. Answers go to `sh.wbuf`.
    fn handle_input(&mut self, data: &[u8], at_eof: bool, sh: &mut Shared) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            match &mut self.skip {
                Skip::Nothing => {}
                Skip::Length(left) => {
                    let skip = (*left).min((data.len() - pos) as u64);
                    *left -= skip;
                    pos += skip as usize;
                    if *left == 0 {
                        self.skip = Skip::Nothing;
                    }
                    continue;
                }
                Skip::Chunked(decoder) => {
                    match decoder.decode(&data[pos..], |_| {}) {
                        Ok(used) => pos += used,
                        Err(_) => {
                            // The answer has gone out; the rest cannot be framed.
                            self.state = State::Closing;
                            return data.len();
                        }
                    }
                    if decoder.is_done() {
                        self.skip = Skip::Nothing;
                    }
                    continue;
                }
            }
            let State::Head(scan) = &mut self.state else {
                break;
            };
            if sh.wbuf.len() >= WBUF_FLUSH {
                break;
            }
            let buf = &data[pos..];
            let outcome = scan.advance(buf);
            match outcome {
                Scan::Partial => {
                    if !self.head_started {
                        self.head_started = true;
                        self.deadline = sh.clock.deadline(sh.timeouts.head);
                    }
                    break;
                }
                Scan::RequestLine(end) => {
                    // Judge the request line before its headers arrive, as
                    // Python does: a bad one is answered at once.
                    match request::parse_request_line(&buf[..end]) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            self.state = State::Closing;
                            return data.len();
                        }
                        Err(rejection) => {
                            let line = request::trim_line_end(&buf[..end]);
                            let reply =
                                respond::reject(sh.site, sh.clock, &rejection, false, sh.wbuf);
                            self.log(sh, line, &reply);
                            self.state = State::Closing;
                            return data.len();
                        }
                    }
                }
                Scan::Reject(rejection) => {
                    let line_end = memchr::memchr(b'\n', buf).map_or(0, |i| i + 1);
                    let line = if rejection.status == 414 {
                        &b""[..]
                    } else {
                        request::trim_line_end(&buf[..line_end])
                    };
                    let head_only = request::parse_request_line(line)
                        .ok()
                        .flatten()
                        .is_some_and(|l| l.method == b"HEAD");
                    let reply = respond::reject(sh.site, sh.clock, &rejection, head_only, sh.wbuf);
                    self.log(sh, line, &reply);
                    self.state = State::Closing;
                    return data.len();
                }
                Scan::Complete { line_end, head_end } => {
                    let Some(reply) = self.answer(&buf[..line_end], &buf[line_end..head_end], sh)
                    else {
                        self.state = State::Closing;
                        return data.len();
                    };
                    pos += head_end;
                    self.head_started = false;
                    self.skip = Skip::from(reply.discard);
                    self.after_reply(reply, request::trim_line_end(&buf[..line_end]), sh);
                    if at_eof {
                        break;
                    }
                }
            }
        }
        pos
    }

    /// Answers one complete head into `sh.wbuf`.
    /// `None` for a blank request line, which Python answers by closing.
    fn answer(&mut self, line: &[u8], header_block: &[u8], sh: &mut Shared) -> Option<Reply> {
        let raw_line = request::trim_line_end(line);
        let parsed = match request::parse_request_line(line) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return None,
            Err(rejection) => {
                let reply = respond::reject(sh.site, sh.clock, &rejection, false, sh.wbuf);
                self.log(sh, raw_line, &reply);
                return Some(reply);
            }
        };
        // Most heads have few headers: fill a small array unless the head
        // has more lines than it holds.
        let mut small = [EMPTY_HEADER; 24];
        let mut large;
        let lines = memchr::memchr_iter(b'\n', header_block).count();
        let slots: &mut [httparse::Header] = if lines <= small.len() {
            &mut small
        } else {
            large = [EMPTY_HEADER; MAX_HEADER_LINES];
            &mut large
        };
        let checked = request::parse_headers(header_block, slots).and_then(|count| {
            let framing = request::body_framing(parsed.version, &slots[..count])?;
            Ok((count, framing))
        });
        let (count, framing) = match checked {
            Ok(found) => found,
            Err(rejection) => {
                // Where this request ends is in doubt: answer and close, so
                // nothing after it is read as a request.
                let head_only = parsed.method == b"HEAD";
                let reply = respond::reject(sh.site, sh.clock, &rejection, head_only, sh.wbuf);
                self.log(sh, raw_line, &reply);
                return Some(reply);
            }
        };
        let req = Request {
            peer: self.peer,
            raw_line,
            line: parsed,
            headers: &slots[..count],
            framing,
        };
        let reply = respond::respond(sh.site, sh.clock, &req, sh.wbuf, sh.scratch);
        if !matches!(reply.body, Body::Cgi(_)) {
            // A script's status is known, and logged, when its header comes.
            self.log(sh, raw_line, &reply);
        }
        Some(reply)
    }

    fn log(&self, sh: &mut Shared, raw_line: &[u8], reply: &Reply) {
        if let Some(message) = &reply.error {
            sh.log.error(sh.clock, self.peer, reply.status, message);
        }
        sh.log.request(sh.clock, self.peer, raw_line, reply.status);
    }

    /// Moves to the state that sends the rest of `reply`.
    fn after_reply(&mut self, reply: Reply, raw_line: &[u8], sh: &mut Shared) {
        self.answered = true;
        self.clean_close = reply.error.is_none() && reply.discard == BodyFraming::NONE;
        match reply.body {
            Body::Cgi(request) => self.start_cgi(*request, reply.close, raw_line, sh),
            Body::File { file, offset, len } => {
                self.state = State::File {
                    file,
                    offset,
                    end: offset + len,
                    close: reply.close,
                };
                self.deadline = sh.clock.deadline(sh.timeouts.send);
                self.progress = 0;
            }
            Body::Produce(producer) => {
                self.state = State::Produce {
                    producer,
                    close: reply.close,
                };
                self.deadline = sh.clock.deadline(sh.timeouts.send);
                self.progress = 0;
            }
            Body::None if reply.close => self.state = State::Closing,
            Body::None => {
                self.await_request(sh);
            }
        }
    }

    /// A response is done and the connection is kept: wait for the next
    /// request.
    fn await_request(&mut self, sh: &Shared) {
        self.state = State::Head(HeadScan::default());
        self.deadline = sh.clock.deadline(sh.timeouts.idle);
        self.waiting_since = sh.clock.now;
    }

    /// Sends what `handle_input` gathered, keeping whatever the socket refuses.
    fn flush_wbuf(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if sh.wbuf.is_empty() {
            return Ok(Step::Continue);
        }
        if self.out_pos < self.out.len() || !self.writable {
            self.out.extend_from_slice(sh.wbuf);
            sh.wbuf.clear();
            return Ok(Step::Continue);
        }
        let more = matches!(self.state, State::File { .. });
        let sent = match sys::send(self.socket.as_raw_fd(), sh.wbuf, more) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                0
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                sh.wbuf.clear();
                return Err(e);
            }
        };
        if sent < sh.wbuf.len() {
            self.out.clear();
            self.out.extend_from_slice(&sh.wbuf[sent..]);
            self.out_pos = 0;
            self.deadline = sh.clock.deadline(sh.timeouts.send);
            self.progress = 0;
        }
        sh.wbuf.clear();
        Ok(Step::Continue)
    }

    /// Counts bytes the client took. The send deadline moves only once it
    /// has taken `MIN_PROGRESS` more: a reader taking a few bytes now and
    /// then (a slow-read attack) cannot hold a connection for ever.
    fn progressed(&mut self, n: usize, sh: &Shared) {
        self.progress += n;
        if self.progress >= MIN_PROGRESS {
            self.progress = 0;
            self.deadline = sh.clock.deadline(sh.timeouts.send);
            // A script's own deadline still holds while it streams.
            if let State::Cgi(run) = &self.state {
                self.deadline = self.deadline.min(run.deadline);
            }
        }
    }

    /// Sends from `out`, which the socket refused earlier.
    fn send_out(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if !self.writable {
            return Ok(Step::Blocked);
        }
        let more = matches!(self.state, State::File { .. });
        match sys::send(self.socket.as_raw_fd(), &self.out[self.out_pos..], more) {
            Ok(n) => {
                self.out_pos += n;
                self.progressed(n, sh);
                if self.out_pos == self.out.len() {
                    self.out_pos = 0;
                    // A burst's buffer is not worth keeping for an idle client.
                    self.out = Vec::new();
                    if let State::Head(_) = self.state {
                        self.deadline = sh.clock.deadline(sh.timeouts.idle);
                    }
                }
                Ok(Step::Continue)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                Ok(Step::Blocked)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Step::Continue),
            Err(e) => Err(e),
        }
    }

    /// Makes and sends the next piece of a produced response. Only once
    /// what was made before is sent: a slow reader holds one piece.
    fn produce(&mut self, sh: &mut Shared) -> io::Result<Step> {
        let State::Produce { producer, close } = &mut self.state else {
            return Ok(Step::Continue);
        };
        let close = *close;
        let before = sh.wbuf.len();
        let produced = producer.produce(sh.wbuf, sh.clock);
        *sh.turn_bytes += sh.wbuf.len() - before;
        match produced {
            respond::Produced::Again => return Ok(Step::Yield),
            respond::Produced::More => {}
            respond::Produced::Done { close: failed } => {
                if close || failed {
                    self.clean_close &= !failed;
                    self.state = State::Closing;
                } else {
                    self.await_request(sh);
                }
            }
        }
        self.flush_wbuf(sh)
    }

    /// Sends the next piece of a file body with `sendfile`.
    fn send_file(&mut self, sh: &mut Shared) -> io::Result<Step> {
        if !self.writable {
            return Ok(Step::Blocked);
        }
        let State::File {
            file,
            offset,
            end,
            close,
        } = &mut self.state
        else {
            return Ok(Step::Continue);
        };
        let left = (*end - *offset).min(SENDFILE_CHUNK as u64) as usize;
        let sent = sys::sendfile(self.socket.as_raw_fd(), file, offset, left);
        let (done, close) = (*offset == *end, *close);
        match sent {
            // The file shrank under us: the promised length cannot be kept,
            // so the connection ends and the client sees a short body.
            Ok(0) => return Ok(Step::Done),
            Ok(n) => {
                *sh.turn_bytes += n;
                self.progressed(n, sh);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                return Ok(Step::Blocked);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Step::Continue),
            Err(e) => return Err(e),
        }
        if done {
            if close {
                self.state = State::Closing;
            } else {
                self.await_request(sh);
            }
        }
        Ok(Step::Continue)
    }

    /// The deadline has passed: answer 408 to a half-sent head, otherwise
    /// just close.
    pub fn timed_out(&mut self, sh: &mut Shared) -> Progress {
        match self.state {
            State::Head(_) if self.head_started && self.out_pos == self.out.len() => {
                let rejection = request::Rejection {
                    status: 408,
                    message: None,
                    explain: None,
                    before_version: false,
                };
                let reply = respond::reject(sh.site, sh.clock, &rejection, false, sh.wbuf);
                sh.log
                    .error(sh.clock, self.peer, reply.status, "Request timed out");
                self.state = State::Closing;
                self.inbuf = Vec::new();
                if self.flush_wbuf(sh).is_err() {
                    return Progress::Close;
                }
                self.deadline = sh.clock.deadline(sh.timeouts.linger);
                self.pump(sh)
            }
            State::Head(_) | State::Linger => Progress::Close,
            State::Cgi(ref run)
                if run
                    .exited
                    .is_some_and(|t| sh.clock.now >= t + cgi_run::STRAY_GRACE)
                    && sh.clock.now < run.deadline =>
            {
                // The script is gone; what it left behind holds its output
                // open. End the response as if the output had ended, and
                // stop the group.
                sh.children.push(ChildEvent::StopGroup(run.pid));
                self.cgi_output_ended(sh);
                if let State::Cgi(run) = &self.state {
                    self.deadline = run.deadline;
                }
                self.pump(sh)
            }
            State::Cgi(ref run)
                if run.framing == Framing::Pending && self.out_pos == self.out.len() =>
            {
                let raw_line = run.raw_line.clone();
                self.cgi_failed(504, "CGI script timed out", &raw_line, sh);
                self.pump(sh)
            }
            State::Cgi(ref run) if sh.clock.now >= run.deadline => {
                // Its response has begun: cut it off, so the client cannot
                // take a truncated body for a whole one.
                sh.log.note(sh.clock, self.peer, "CGI script timed out");
                Progress::Close
            }
            State::File { .. } | State::Produce { .. } | State::Closing | State::Cgi(_) => {
                sh.log.note(
                    sh.clock,
                    self.peer,
                    "Response abandoned: the client stopped reading",
                );
                Progress::Close
            }
        }
    }
}

/// A request body being stepped over to reach the next request.
enum Skip {
    Nothing,
    Length(u64),
    Chunked(ChunkedDecoder),
}

impl Skip {
    fn is_active(&self) -> bool {
        !matches!(self, Skip::Nothing)
    }
}

impl From<BodyFraming> for Skip {
    fn from(framing: BodyFraming) -> Skip {
        match framing {
            BodyFraming::Length(0) => Skip::Nothing,
            BodyFraming::Length(n) => Skip::Length(n),
            BodyFraming::Chunked => Skip::Chunked(ChunkedDecoder::new()),
        }
    }
}

enum Step {
    Continue,
    Blocked,
    /// Progress made, but the rest must wait for the next turn of the loop.
    Yield,
    Done,
}
