//! One client connection: a state machine driven by socket readiness.
//!
//! The connection owns its socket, the bytes it has received but not yet
//! used, and the bytes it could not send yet. What it answers comes from
//! the handler, through an [`Exchange`]; this module only moves bytes and
//! keeps time. Buffers the reactor lends (`Shared`) carry the common
//! case, so a connection that is waiting for its next request owns no
//! buffer at all.

mod cgi_run;
mod flow;

pub use flow::BodyMemory;

use crate::handler::{BodySource, Config, Exchange, Req};
use crate::proto::chunked::ChunkedDecoder;
use crate::proto::request::{self, BodyFraming, HeadScan, Rejection, RequestLine, Scan, Version};
use crate::server::clock::Clock;
use crate::server::log::AccessLog;
use crate::server::workers::Pool;
use crate::server::{Dispatch, Services, sys};
use cgi_run::{CgiRun, Framing};
pub(crate) use flow::OwnedHead;
use flow::{BodyRead, DeferWait, PollWait};
use mio::Registry;
use mio::net::TcpStream;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
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
pub(crate) struct Shared<'a> {
    pub handler: &'a Dispatch,
    pub config: &'a std::sync::Arc<Config>,
    pub clock: &'a Clock,
    pub log: &'a mut AccessLog,
    pub timeouts: &'a Timeouts,
    pub defer_timeout: Duration,
    /// Where socket reads land first.
    pub rbuf: &'a mut [u8],
    /// Where responses are written before they are sent.
    pub wbuf: &'a mut Vec<u8>,
    /// A handler's body while its length is not known yet.
    pub held: &'a mut Vec<u8>,
    pub services: &'a mut Services,
    /// Where CGI pipes are registered.
    pub registry: &'a Registry,
    /// Bulk body bytes sent this turn of the loop (see [`TURN_BUDGET`]).
    pub turn_bytes: &'a mut usize,
    /// What happened to CGI children while handling this event, for the
    /// reactor, which watches and reaps them.
    pub children: &'a mut Vec<ChildEvent>,
    /// The worker threads, for deferred work.
    pub pool: Option<&'a mut Pool>,
    /// Request bodies held whole, all connections together.
    pub body_memory: &'a std::rc::Rc<flow::BodyMemory>,
    /// CGI scripts running now, and the most at once.
    pub scripts: &'a mut usize,
    pub max_scripts: usize,
}

impl Shared<'_> {
    /// An exchange for `req`, answering into the shared output buffer with
    /// the server's services at hand.
    pub(crate) fn exchange<'b>(&'b mut self, req: Req<'b>, keep_alive: bool) -> Exchange<'b> {
        Exchange::new(
            req,
            self.wbuf,
            self.held,
            self.config,
            self.clock.http_date(),
            self.clock.unix_secs(),
            keep_alive,
            Some(self.services),
            None,
        )
    }

    /// An exchange that only writes an error page, into `page` or else the
    /// shared output buffer; the connection closes after it.
    pub(crate) fn error_exchange<'b>(
        &'b mut self,
        req: Req<'b>,
        page: Option<&'b mut Vec<u8>>,
    ) -> Exchange<'b> {
        Exchange::new(
            req,
            page.unwrap_or(self.wbuf),
            self.held,
            self.config,
            self.clock.http_date(),
            self.clock.unix_secs(),
            false,
            None,
            None,
        )
    }
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
    /// A handler's poll is pending: run it again after a short while
    /// ([`POLL_INTERVAL`]), not at once, so a waiting poll does not spin.
    Later,
    /// Drop the connection.
    Close,
}

/// How often a pending [`crate::Exchange::poll`] is called again.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

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
    /// Sending a body as a source makes it (framed as `chunked` says).
    Stream {
        source: Box<dyn BodySource>,
        chunked: bool,
        close: bool,
        /// What is left of the length the handler declared, if it did.
        left: Option<u64>,
    },
    /// Reading a request body for the handler.
    Body(Box<BodyRead>),
    /// A handler's function, called each turn until it answers.
    Poll(Box<PollWait>),
    /// Waiting for a worker thread's answer.
    Deferred(Box<DeferWait>),
    /// A CGI script is running; its output is the response.
    Cgi(Box<CgiRun>),
    /// The last response is being sent; then our side closes.
    Closing,
    /// Our side is closed; reading until the client closes too, so that
    /// unread request bytes do not turn into a reset that eats the response.
    Linger,
}

pub struct Connection {
    key: usize,
    generation: u64,
    socket: TcpStream,
    peer: SocketAddr,
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
/// Bytes of bulk body (files, listings, streams, script output) all
/// connections together send per turn of the loop; past it, bulk senders
/// wait for the next turn, so a turn stays short (a few ms) however many
/// downloads run at once, and a new request is never stuck behind them.
pub const TURN_BUDGET: usize = 1 << 20;
/// Responses gathered before they are sent together (pipelining).
const WBUF_FLUSH: usize = 64 * 1024;
/// Bytes a client must take per send timeout to keep a response going.
const MIN_PROGRESS: usize = 32 * 1024;
/// Largest `sendfile` per call, so one download does not hog the loop.
const SENDFILE_CHUNK: usize = 1 << 20;
/// Bytes a stream makes at once for one connection.
const STREAM_CHUNK: usize = 16 * 1024;
/// How long a script's or a worker's answer is still waited for once the
/// client has ended its input (see `watch_client`).
pub const HALF_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Pipelined request bytes held while a script runs or a worker works;
/// beyond this the socket is not read until the response is done.
const PIPELINE_HOLD: usize = 16 * 1024;

impl Connection {
    pub fn new(
        key: usize,
        generation: u64,
        socket: TcpStream,
        peer: SocketAddr,
        clock: &Clock,
        timeouts: &Timeouts,
    ) -> Connection {
        Connection {
            key,
            generation,
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

    /// Joins the poll (edge-triggered: what is ready now is reported at
    /// once, so nothing done before this call is missed).
    pub fn register(&mut self, registry: &Registry, token: mio::Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// Which client of this slab slot it is.
    pub fn generation(&self) -> u64 {
        self.generation
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

    /// Not one byte received on this connection yet.
    pub(crate) fn received_nothing(&self) -> bool {
        !self.answered && !self.head_started && self.inbuf.is_empty()
    }

    /// Nothing received, and the kernel held this connection through the
    /// listener's accept deferral (it had to retransmit the SYN-ACK): the
    /// client has been silent for a second already, as a browser's
    /// pre-opened socket is. One handed over early (a SYN cookie, in a
    /// burst) is not: its request may be on the way.
    pub(crate) fn silent_before_accept(&self) -> bool {
        matches!(self.state, State::Head(_))
            && self.received_nothing()
            // Exactly the deferral's one retransmission (TCP_DEFER_ACCEPT
            // of 1 s). More means the handshake itself was lost or
            // refused, in an overflowing listen queue, say, where the
            // client's request may have been dropped with it and be
            // resent seconds later: that one keeps its grace.
            && sys::syn_ack_retransmits(self.socket.as_raw_fd()) == 1
    }

    /// Counts `by` more of waiting for a request (for making room).
    pub(crate) fn backdate_wait(&mut self, by: Duration) {
        if let Some(earlier) = self.waiting_since.checked_sub(by) {
            self.waiting_since = earlier;
        }
    }

    /// Bytes of input held (an unfinished head, pipelined requests).
    pub fn input_bytes(&self) -> usize {
        self.inbuf.capacity()
    }

    /// The server's input budget is spent and this connection holds the
    /// oldest large share of it: an unfinished head gets 431, anything
    /// else just ends.
    pub(crate) fn shed_input(&mut self, sh: &mut Shared) -> Progress {
        self.inbuf = Vec::new();
        if !matches!(self.state, State::Head(_)) || self.out_pos < self.out.len() {
            return Progress::Close;
        }
        let rejection = Rejection {
            status: 431,
            message: Some("Request header fields too large".into()),
            explain: Some("The server is short of memory for request heads".into()),
            before_version: false,
        };
        self.reject(&rejection, false, b"", sh);
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
    pub(crate) fn pipe_ready(&mut self, source: Source, sh: &mut Shared) -> Progress {
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
    pub(crate) fn ready(
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
    pub(crate) fn pump(&mut self, sh: &mut Shared) -> Progress {
        for _ in 0..BUDGET {
            let step = match self.step(sh) {
                Ok(step) => step,
                Err(_) => return Progress::Close,
            };
            match step {
                Step::Continue => {}
                Step::Blocked => return Progress::Wait,
                Step::Yield => return Progress::Again,
                Step::Later => return Progress::Later,
                Step::Done => return Progress::Close,
            }
        }
        Progress::Again
    }

    /// One unit of work: at most one read, write or sendfile.
    fn step(&mut self, sh: &mut Shared) -> io::Result<Step> {
        match self.state {
            State::Cgi(_) => return self.cgi_step(sh),
            State::Body(_) => return self.body_step(sh),
            State::Deferred(_) => return self.deferred_step(sh),
            _ => {}
        }
        if self.out_pos < self.out.len() {
            return self.send_out(sh);
        }
        let bulk = matches!(self.state, State::File { .. } | State::Stream { .. });
        if bulk && *sh.turn_bytes >= TURN_BUDGET {
            // This turn's share of bulk sending is spent: the next turn.
            return Ok(Step::Yield);
        }
        match &mut self.state {
            State::Head(_) => self.read_requests(sh),
            State::File { .. } => self.send_file(sh),
            State::Stream { .. } => self.send_stream(sh),
            State::Poll(_) => self.poll_step(sh),
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
            State::Cgi(_) | State::Body(_) | State::Deferred(_) => Ok(Step::Continue),
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
        !matches!(self.state, State::Closing | State::Linger)
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
                        Ok(Some(line)) => {
                            if let Some(rejection) = refuse_line(&line, sh.config) {
                                let raw = request::trim_line_end(&buf[..end]);
                                self.reject(&rejection, false, raw, sh);
                                return data.len();
                            }
                        }
                        Ok(None) => {
                            self.state = State::Closing;
                            return data.len();
                        }
                        Err(rejection) => {
                            let line = request::trim_line_end(&buf[..end]);
                            self.reject(&rejection, false, line, sh);
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
                    self.reject(&rejection, head_only, line, sh);
                    return data.len();
                }
                Scan::Complete { line_end, head_end } => {
                    pos += head_end;
                    self.head_started = false;
                    // What follows this head (its body, pipelined requests)
                    // stays for the state the answer leaves us in.
                    self.dispatch(&buf[..head_end], line_end, sh);
                    if at_eof {
                        break;
                    }
                }
            }
        }
        pos
    }

    /// Answers a head the server refuses before any handler sees it
    /// (Python's `send_error` from `parse_request`): the error page, the
    /// log lines, and the connection ends.
    fn reject(&mut self, rejection: &Rejection, head_only: bool, raw_line: &[u8], sh: &mut Shared) {
        let headers = [request::EMPTY_HEADER; 0];
        let req = Req {
            peer: self.peer,
            raw_line,
            line: RequestLine {
                method: if head_only { b"HEAD" } else { b"GET" },
                target: b"/",
                raw_target: b"/",
                version_word: b"HTTP/1.0",
                version: Version::HTTP_10,
            },
            headers: &headers[..],
            framing: BodyFraming::NONE,
        };
        let mut ex = sh.error_exchange(req, None);
        ex.send_error(
            rejection.status,
            rejection.message.as_deref(),
            rejection.explain.as_deref(),
        );
        let outcome = ex.finish();
        if let Some(message) = &outcome.error {
            sh.log
                .error(sh.clock, self.peer.ip(), outcome.status, message);
        }
        sh.log
            .request(sh.clock, self.peer.ip(), raw_line, outcome.status);
        self.answered = true;
        self.clean_close = false;
        self.state = State::Closing;
    }

    /// A response is done and the connection is kept: wait for the next
    /// request.
    fn await_request(&mut self, sh: &Shared) {
        if self.inbuf.is_empty() && self.inbuf.capacity() > 16 * 1024 {
            // A large head or upload passed: an idle connection keeps no
            // more room than a small head needs.
            self.inbuf = Vec::new();
        }
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
        let more = matches!(self.state, State::File { .. } | State::Closing);
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
        let more = matches!(self.state, State::File { .. } | State::Closing);
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
            self.body_sent(close, sh);
        }
        Ok(Step::Continue)
    }

    /// Makes and sends the next piece of a streamed body. Only once what was
    /// made before is sent: a slow reader holds one piece.
    fn send_stream(&mut self, sh: &mut Shared) -> io::Result<Step> {
        let State::Stream {
            source,
            chunked,
            close,
            left,
        } = &mut self.state
        else {
            return Ok(Step::Continue);
        };
        let (chunked, mut close) = (*chunked, *close);
        let before = sh.wbuf.len();
        let mut more = if chunked {
            sh.held.clear();
            let more = source.fill(sh.held, STREAM_CHUNK);
            crate::handler::write_chunk(sh.wbuf, sh.held);
            if !more {
                sh.wbuf.extend_from_slice(b"0\r\n\r\n");
            }
            more
        } else {
            source.fill(sh.wbuf, STREAM_CHUNK)
        };
        if let Some(left) = left {
            // The handler gave a length: not a byte past it, and a stream
            // that ends short ends the connection too.
            let made = (sh.wbuf.len() - before) as u64;
            if made >= *left {
                sh.wbuf.truncate(before + *left as usize);
                close |= made > *left || more;
                more = false;
                *left = 0;
            } else {
                *left -= made;
                close |= !more;
            }
        }
        *sh.turn_bytes += sh.wbuf.len() - before;
        if !more {
            self.body_sent(close, sh);
        }
        self.flush_wbuf(sh)
    }

    /// A response's body is out: the connection ends or waits for more.
    fn body_sent(&mut self, close: bool, sh: &Shared) {
        if close {
            self.state = State::Closing;
        } else {
            self.await_request(sh);
        }
    }

    /// Reads what the client sends while its answer is being made (a
    /// script running, a worker working). Pipelined requests are kept for
    /// after the answer, up to a bound. The end of its input may be a
    /// client that has left or one that only half-closed and still reads
    /// (`nc -N`): nothing tells them apart until an answer is written, so
    /// the answer is waited for [`HALF_CLOSE_GRACE`] longer at most (a
    /// client that has gone then resets the first write). `Err` when the
    /// socket fails.
    fn watch_client(&mut self, sh: &mut Shared) -> io::Result<bool> {
        if !self.readable || self.peer_closed {
            return Ok(false);
        }
        let room = PIPELINE_HOLD.saturating_sub(self.inbuf.len());
        if room == 0 {
            // Not read now; a client that has also closed is seen later.
            return Ok(false);
        }
        let want = room.min(sh.rbuf.len());
        match self.socket.read(&mut sh.rbuf[..want]) {
            Ok(0) => {
                self.peer_closed = true;
                self.readable = false;
                self.deadline = self.deadline.min(sh.clock.deadline(HALF_CLOSE_GRACE));
                Ok(false)
            }
            Ok(n) => {
                self.inbuf.extend_from_slice(&sh.rbuf[..n]);
                if n < want && !self.read_closed {
                    self.readable = false;
                }
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

    /// A response ends before its end: the close is a reset, never a FIN
    /// that could pass for the end of a close-delimited body.
    fn cut_off(&self) {
        sys::reset_on_close(self.socket.as_raw_fd());
    }

    /// The deadline has passed: answer 408 to a half-sent head (504 to
    /// work that never answered), otherwise just close.
    pub(crate) fn timed_out(&mut self, sh: &mut Shared) -> Progress {
        match self.state {
            State::Cgi(_) | State::Deferred(_) if self.peer_closed => {
                sh.log.note(
                    sh.clock,
                    self.peer.ip(),
                    "Client closed the connection; its answer was not waited for",
                );
                Progress::Close
            }
            State::Head(_) if self.head_started && self.out_pos == self.out.len() => {
                let rejection = Rejection {
                    status: 408,
                    message: None,
                    explain: None,
                    before_version: false,
                };
                self.inbuf = Vec::new();
                self.reject(&rejection, false, b"", sh);
                sh.log.note(sh.clock, self.peer.ip(), "Request timed out");
                if self.flush_wbuf(sh).is_err() {
                    return Progress::Close;
                }
                self.deadline = sh.clock.deadline(sh.timeouts.linger);
                self.pump(sh)
            }
            State::Head(_) | State::Linger => Progress::Close,
            State::Body(_) if self.out_pos == self.out.len() => {
                self.body_timed_out(sh);
                if self.flush_wbuf(sh).is_err() {
                    return Progress::Close;
                }
                self.deadline = sh.clock.deadline(sh.timeouts.linger);
                self.pump(sh)
            }
            State::Deferred(_) if self.out_pos == self.out.len() => {
                self.deferred_timed_out(sh);
                self.pump(sh)
            }
            State::Poll(_) if self.out_pos == self.out.len() => {
                self.poll_timed_out(sh);
                self.pump(sh)
            }
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
                // Its response has begun: cut it off with a reset, so the
                // client cannot take a truncated body for a whole one.
                sh.log
                    .note(sh.clock, self.peer.ip(), "CGI script timed out");
                self.cut_off();
                Progress::Close
            }
            State::File { .. }
            | State::Stream { .. }
            | State::Body(_)
            | State::Poll(_)
            | State::Deferred(_)
            | State::Closing
            | State::Cgi(_) => {
                sh.log.note(
                    sh.clock,
                    self.peer.ip(),
                    "Response abandoned: the client stopped reading",
                );
                self.cut_off();
                Progress::Close
            }
        }
    }
}

/// What the server refuses in a request line before any handler sees it:
/// HTTP/0.9 unless the server speaks it (Python does).
fn refuse_line(line: &RequestLine, cfg: &Config) -> Option<Rejection> {
    if line.version == Version::Http09 && !cfg.http09 {
        return Some(Rejection {
            status: 400,
            message: Some("Bad request version ('HTTP/0.9')".into()),
            explain: None,
            before_version: true,
        });
    }
    None
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
    /// Nothing to do until a pending poll is called again.
    Later,
}

/// Python's rules for `close_connection`, with `Connection` read as a list
/// of tokens rather than compared whole.
pub fn keep_alive(
    protocol: crate::handler::Protocol,
    line: &RequestLine,
    headers: &[httparse::Header],
) -> bool {
    if protocol == crate::handler::Protocol::Http10 || line.version == Version::Http09 {
        return false;
    }
    // Every `Connection` line counts: `close` on any of them closes
    // (RFC 9112 9.6); Python reads only the first.
    let lines = || {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Connection"))
    };
    if lines().any(|h| request::has_token(h.value, "close")) {
        false
    } else if lines().any(|h| request::has_token(h.value, "keep-alive")) {
        true
    } else {
        line.version >= Version::HTTP_11
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Protocol;

    fn line(v: Version) -> RequestLine<'static> {
        RequestLine {
            method: b"GET",
            target: b"/",
            raw_target: b"/",
            version_word: b"HTTP/1.1",
            version: v,
        }
    }

    fn h<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn keep_alive_rules() {
        use Protocol::*;
        assert!(!keep_alive(
            Http11,
            &line(Version::HTTP_11),
            &[h("Connection", b"keep-alive"), h("Connection", b"close")]
        ));
        assert!(keep_alive(Http11, &line(Version::HTTP_11), &[]));
        assert!(!keep_alive(Http11, &line(Version::HTTP_10), &[]));
        assert!(keep_alive(
            Http11,
            &line(Version::HTTP_10),
            &[h("connection", b"Keep-Alive")]
        ));
        assert!(!keep_alive(
            Http11,
            &line(Version::HTTP_11),
            &[h("Connection", b"close")]
        ));
        assert!(!keep_alive(
            Http10,
            &line(Version::HTTP_11),
            &[h("Connection", b"keep-alive")]
        ));
        assert!(!keep_alive(Http11, &line(Version::Http09), &[]));
    }
}
