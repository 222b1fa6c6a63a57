//! The event loop: one `mio::Poll` on one thread, owning the listening
//! sockets, a slab of connections, the CGI children, the worker pool's
//! answers and (when asked) a signalfd. It reacts to readiness and to the
//! passing of time; everything else happens in the connections.

use crate::handler::Config;
use crate::server::child;
use crate::server::clock::Clock;
use crate::server::connection::{
    ChildEvent, Connection, POLL_INTERVAL, Progress, Shared, Source, Timeouts,
};
use crate::server::log::AccessLog;
use crate::server::workers::Pool;
use crate::server::{Dispatch, Services, sys};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SIGNALS: Token = Token(usize::MAX - 2);
const INOTIFY: Token = Token(usize::MAX - 3);
const WAKER: Token = Token(usize::MAX - 4);
/// Listeners: `LISTENERS - i` for the `i`th.
const LISTENERS: usize = usize::MAX - 16;
const MAX_LISTENERS: usize = 1024;
/// A CGI child's pidfd: `CHILDREN + pid`.
const CHILDREN: usize = usize::MAX / 2;
/// Each connection owns a few tokens (its socket, later its CGI pipes):
/// `key * TOKENS_PER_CONNECTION + source`.
pub const TOKENS_PER_CONNECTION: usize = 4;
/// Connections accepted per listener event before others get a turn.
const ACCEPT_BUDGET: usize = 64;
/// Size of the shared read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// How long in-flight responses may take to finish once stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long to stop accepting when the process runs out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Between SIGTERM and SIGKILL for a CGI script we stop.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Memory all connections may hold of input not yet used (unfinished
/// heads, pipelined requests): Python's per-line limits allow 135 KiB for
/// one head, and 800 clients each holding one would take 106 MB. Past
/// this, the connection whose head has been coming in the longest (of
/// those holding more than `SMALL_INPUT`) gets 431.
pub const INPUT_BUDGET: usize = 16 << 20;
/// A connection holding less input than this is never picked to make room
/// in the input budget.
const SMALL_INPUT: usize = 8 * 1024;
/// Connections closed at once to make room at the connection limit.
const EVICT_BATCH: usize = 32;
/// How long the server must have had nothing to do before it gives back
/// the clean file pages serving touched (`release_idle_memory`).
const IDLE_RELEASE_AFTER: Duration = Duration::from_secs(10);
/// How long a connection that has sent nothing must have waited before it
/// can be closed to make room. One just accepted may have its
/// request on the way (a SYN-cookie handshake hands it over before its
/// data): closing it would reset a client that did nothing wrong.
const EVICT_MIN_WAIT: Duration = Duration::from_secs(1);

/// How the reactor is set up (see `ServerBuilder`).
pub(crate) struct Options {
    pub config: Arc<Config>,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    pub quiet: bool,
    pub log_to: Option<crate::server::log::LogFn>,
    pub workers: usize,
    pub queue: usize,
    pub defer_timeout: Duration,
    /// Request bodies held whole, all connections together.
    pub max_body_memory: usize,
    /// CGI scripts running at once.
    pub max_scripts: usize,
    pub handle_signals: bool,
    /// Release clean file pages after `IDLE_RELEASE_AFTER` with nothing to do.
    pub release_idle_memory: bool,
    /// Printed on stdout when a stop signal comes (the command line's
    /// "Keyboard interrupt received, exiting.").
    pub stop_message: Option<&'static str>,
}

/// What connections borrow from the server while they handle an event.
struct Env {
    poll: Poll,
    children: Vec<ChildEvent>,
    handler: Dispatch,
    config: Arc<Config>,
    clock: Clock,
    log: AccessLog,
    timeouts: Timeouts,
    defer_timeout: Duration,
    rbuf: Box<[u8]>,
    wbuf: Vec<u8>,
    held: Vec<u8>,
    services: Services,
    turn_bytes: usize,
    pool: Option<Pool>,
    workers: (usize, usize),
    /// The one waker of this poll (workers' answers, shutdown handles).
    waker: Arc<mio::Waker>,
    body_memory: std::rc::Rc<crate::server::connection::BodyMemory>,
    /// CGI scripts started and not yet reaped, and the most at once.
    scripts: usize,
    max_scripts: usize,
}

impl Env {
    fn shared(&mut self) -> Shared<'_> {
        // Left over only if a connection panicked mid-answer: never send
        // one client's bytes to another.
        self.wbuf.clear();
        if self.pool.is_none() {
            self.pool = Some(Pool::new(
                self.workers.0,
                self.workers.1,
                Arc::clone(&self.waker),
            ));
        }
        Shared {
            handler: &self.handler,
            config: &self.config,
            clock: &self.clock,
            log: &mut self.log,
            timeouts: &self.timeouts,
            defer_timeout: self.defer_timeout,
            rbuf: &mut self.rbuf,
            wbuf: &mut self.wbuf,
            held: &mut self.held,
            services: &mut self.services,
            registry: self.poll.registry(),
            turn_bytes: &mut self.turn_bytes,
            children: &mut self.children,
            pool: self.pool.as_mut(),
            body_memory: &self.body_memory,
            scripts: &mut self.scripts,
            max_scripts: self.max_scripts,
        }
    }
}

/// A CGI script's process group, which the server is responsible for
/// until the script is reaped and, if it had to be stopped, the group is
/// gone too. Keyed by the script's pid, which is the group's id.
struct Watched {
    /// When it is sent SIGTERM (then, once that is done, SIGKILL).
    deadline: Instant,
    terminated: bool,
    /// The connection it answers, told when the script exits.
    key: usize,
    /// The script has been reaped; only the rest of its group may be left.
    reaped: bool,
    /// Readable when the script exits (none on kernels without pidfd:
    /// then children are reaped once a second).
    pidfd: Option<OwnedFd>,
}

pub(crate) struct Reactor {
    listeners: Vec<TcpListener>,
    children: HashMap<u32, Watched>,
    signals: Option<OwnedFd>,
    stop_message: Option<&'static str>,
    shutdown: Arc<AtomicBool>,
    conns: Slab<Connection>,
    env: Env,
    max_connections: usize,
    /// The listeners are out of the poll: at the connection limit, after
    /// EMFILE until the given time, or for good once shutting down.
    paused: Option<Instant>,
    /// At the connection limit with nobody old enough to make room: when
    /// to look again.
    evict_check: Option<Instant>,
    /// When to release clean file pages if the server stays idle (`None`:
    /// off, or already done since the last work).
    idle_release: Option<Instant>,
    release_idle_memory: bool,
    /// Set once stopping: the time by which we exit regardless.
    stopping: Option<Instant>,
    /// Tokens with work left after their budget ran out.
    run_queue: Vec<Token>,
    /// Connections whose handler's poll is pending, run again at the next
    /// poll round.
    later: Vec<Token>,
    next_poll_round: Instant,
    /// inotify events are left to read (a storm is read a part per turn).
    inotify_pending: bool,
    /// Input bytes held by all connections (see [`INPUT_BUDGET`]).
    input_held: usize,
    /// `shed_input` is running (it calls `apply`, which would call it).
    shedding: bool,
    /// Each accepted connection's number, so an answer from a worker is
    /// never given to a later client of the same slab slot.
    generation: u64,
}

impl Reactor {
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        handler: Dispatch,
        options: Options,
    ) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        if listeners.is_empty() || listeners.len() > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a server needs one listener at least, at most 1024",
            ));
        }
        let mut ours = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(LISTENERS - i), Interest::READABLE)?;
            ours.push(l);
        }
        let signals = if options.handle_signals {
            let fd = sys::signal_fd(&[libc::SIGINT, libc::SIGTERM])?;
            poll.registry().register(
                &mut SourceFd(&fd.as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )?;
            Some(fd)
        } else {
            None
        };
        // Without inotify there is no cache: every request opens its file.
        // The cache holds at most a quarter of the descriptors we may open.
        let cache = crate::handlers::cache::FileCache::new(open_file_limit() / 4)
            .ok()
            .filter(|c| {
                poll.registry()
                    .register(&mut SourceFd(&c.fd()), INOTIFY, Interest::READABLE)
                    .is_ok()
            });
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let mut log = AccessLog::new(options.quiet);
        if let Some(f) = options.log_to {
            log.set_sink(f);
        }
        Ok(Reactor {
            listeners: ours,
            children: HashMap::new(),
            signals,
            stop_message: options.stop_message,
            shutdown: Arc::new(AtomicBool::new(false)),
            conns: Slab::new(),
            env: Env {
                poll,
                children: Vec::new(),
                handler,
                config: options.config,
                clock: Clock::new(),
                log,
                timeouts: options.timeouts,
                defer_timeout: options.defer_timeout,
                body_memory: std::rc::Rc::new(crate::server::connection::BodyMemory::new(
                    options.max_body_memory,
                )),
                scripts: 0,
                max_scripts: options.max_scripts,
                rbuf: vec![0; READ_BUFFER].into_boxed_slice(),
                wbuf: Vec::with_capacity(16 * 1024),
                held: Vec::new(),
                services: Services {
                    cache,
                    ..Services::default()
                },
                turn_bytes: 0,
                pool: None,
                workers: (options.workers, options.queue),
                waker,
            },
            max_connections: options.max_connections.max(1),
            paused: None,
            evict_check: None,
            idle_release: None,
            release_idle_memory: options.release_idle_memory,
            stopping: None,
            run_queue: Vec::new(),
            later: Vec::new(),
            next_poll_round: Instant::now(),
            inotify_pending: false,
            input_held: 0,
            shedding: false,
            generation: 0,
        })
    }

    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// What stops this server from any thread: a flag and the waker.
    pub fn shutdown_parts(&self) -> (Arc<AtomicBool>, Arc<mio::Waker>) {
        (Arc::clone(&self.shutdown), Arc::clone(&self.env.waker))
    }

    /// Serves until a stop (a shutdown handle, or SIGINT/SIGTERM when the
    /// server handles signals), then lets in-flight responses finish.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.env.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            let new_second = self.env.clock.tick();
            self.env.turn_bytes = 0;
            self.env.services.now = self.env.clock.now;
            // A file changed before a request for it arrived: drop it from
            // the cache before any request in this batch is answered.
            if (self.inotify_pending || events.iter().any(|e| e.token() == INOTIFY))
                && let Some(cache) = self.env.services.cache.as_mut()
            {
                self.inotify_pending = cache.on_events();
            }
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.on_signal(),
                    INOTIFY => {}
                    WAKER => self.on_wake(),
                    Token(t) if t > LISTENERS - MAX_LISTENERS && t <= LISTENERS => {
                        self.accept(LISTENERS - t)
                    }
                    Token(t) if t >= CHILDREN => self.on_child(t - CHILDREN),
                    token => {
                        let error = event.is_error();
                        let readable = event.is_readable() || error;
                        let writable = event.is_writable() || event.is_write_closed() || error;
                        let read_closed = event.is_read_closed() || error;
                        self.on_ready(token, readable, writable, read_closed);
                    }
                }
            }
            if !self.later.is_empty() && self.env.clock.now >= self.next_poll_round {
                self.later.sort_unstable();
                self.later.dedup();
                self.run_queue.append(&mut self.later);
                self.next_poll_round = self.env.clock.now + POLL_INTERVAL;
            }
            self.run_queued();
            if new_second {
                self.expire();
                self.reap_children();
                self.expire_children();
            }
            self.resume_listeners();
            self.release_when_idle();
            self.env.log.flush();
            if let Some(deadline) = self.stopping
                && (self.conns.is_empty() || self.env.clock.now >= deadline)
            {
                self.stop_all_children();
                self.env.log.flush();
                return Ok(());
            }
        }
    }

    /// Nothing to do: a connection, a script, a job or the log's backlog.
    fn is_idle(&self) -> bool {
        self.conns.is_empty()
            && self.children.is_empty()
            && self.later.is_empty()
            && self.run_queue.is_empty()
            && self.stopping.is_none()
            && !self.env.log.pending()
    }

    /// Idle since `IDLE_RELEASE_AFTER`: the pages only serving touched are
    /// given back once, until there is work again.
    fn release_when_idle(&mut self) {
        if !self.release_idle_memory {
            return;
        }
        let now = self.env.clock.now;
        if !self.is_idle() {
            self.idle_release = Some(now + IDLE_RELEASE_AFTER);
        } else if self.idle_release.is_some_and(|at| now >= at) {
            self.idle_release = None;
            sys::release_clean_file_pages();
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.run_queue.is_empty() || self.inotify_pending {
            Some(Duration::ZERO)
        } else if !self.later.is_empty() {
            Some(POLL_INTERVAL)
        } else if self.conns.is_empty()
            && self.children.is_empty()
            && self.paused.is_none()
            && self.stopping.is_none()
            && !self.env.log.pending()
        {
            // Nothing can time out: sleep until something happens, or until
            // the idle release is due.
            self.idle_release
                .map(|at| at.saturating_duration_since(Instant::now()))
        } else if let Some(wait) = self
            .paused
            .filter(|_| self.stopping.is_none())
            .map(|until| until.max(self.evict_check.unwrap_or(until)))
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|wait| !wait.is_zero())
        {
            // An EMFILE back-off, or a connection that will be old enough
            // to make room: wake up then. (At the connection limit the
            // listener otherwise returns when a connection closes.)
            Some(wait.min(Duration::from_secs(1)))
        } else {
            Some(Duration::from_secs(1))
        }
    }

    fn accept(&mut self, index: usize) {
        if self.paused.is_some() {
            return;
        }
        for _ in 0..ACCEPT_BUDGET {
            if self.conns.len() > self.max_connections {
                // Out of the poll until a connection closes, rather than
                // waking up for connections we will not take.
                self.pause(self.env.clock.now);
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_out_of_descriptors(&e) => {
                    self.env
                        .log
                        .server_note(&format!("cannot accept: {e}; pausing new connections"));
                    self.pause(self.env.clock.now + ACCEPT_BACKOFF);
                    return;
                }
                // The client went away before we took it (ECONNABORTED...).
                Err(_) => continue,
            };
            if self.conns.len() >= self.max_connections && self.make_room() == 0 {
                // Nobody to make room: this one is taken (the limit is
                // exceeded by at most one) and the next ones wait.
                self.pause(self.env.clock.now);
            }

            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let token = Token(key * TOKENS_PER_CONNECTION);
            self.generation += 1;
            let conn = entry.insert(Connection::new(
                key,
                self.generation,
                socket,
                peer,
                &self.env.clock,
                &self.env.timeouts,
            ));
            // A client usually sends its request right after connecting (the
            // listener defers the accept until it has): answer it now, and
            // only a connection that must wait for something joins the poll.
            // One answered and closed at once never does (no epoll_ctl).
            let progress = guarded(|| conn.ready(true, true, false, &mut self.env.shared()));
            if progress != Progress::Close
                && conn.register(self.env.poll.registry(), token).is_err()
            {
                self.close(key);
                continue;
            }
            if progress != Progress::Close && conn.silent_before_accept() {
                // It can make room at once, as it would had it waited here.
                conn.backdate_wait(EVICT_MIN_WAIT);
            }
            self.apply(key, progress);
        }
        self.run_queue.push(Token(LISTENERS - index));
    }

    /// At the connection limit, makes room by closing the connections that
    /// have waited longest for a request: first those idle after a
    /// response (kept alive), as nginx does, then those that have sent no
    /// complete head (a browser's pre-opened sockets, slow heads), oldest
    /// first (one that has sent nothing only once it has waited `EVICT_MIN_WAIT`). Otherwise
    /// either kind could lock everyone else out: browsers
    /// open sockets ahead of time, which is why Python has
    /// `ThreadingHTTPServer`. Closes a batch, so this scan is rare; returns
    /// how many.
    fn make_room(&mut self) -> usize {
        let now = self.env.clock.now;
        let mut next: Option<Instant> = None;
        let mut waiting: Vec<((bool, Instant), usize)> = Vec::new();
        for (key, c) in &self.conns {
            let Some((idle, since)) = c.waiting_for_a_request() else {
                continue;
            };
            // Only a connection that has sent nothing may have its request
            // on the way; a slow head has shown what it is.
            let ripe = since + EVICT_MIN_WAIT;
            if idle || ripe <= now || !c.received_nothing() {
                waiting.push(((!idle, since), key));
            } else {
                next = Some(next.map_or(ripe, |n| n.min(ripe)));
            }
        }
        if waiting.len() > EVICT_BATCH {
            waiting.select_nth_unstable(EVICT_BATCH);
            waiting.truncate(EVICT_BATCH);
        }
        for &(_, key) in &waiting {
            self.close(key);
        }
        if waiting.is_empty() {
            // Look again when the oldest becomes old enough (or in a
            // second, for connections now busy that may go idle).
            self.evict_check = Some(next.unwrap_or(now + EVICT_MIN_WAIT));
        }
        waiting.len()
    }

    /// Over the input budget: the connections holding the oldest large
    /// unfinished heads (or large pipelined input) give it back, with 431.
    fn shed_input(&mut self) {
        while self.input_held > INPUT_BUDGET {
            let victim = self
                .conns
                .iter()
                .filter(|(_, c)| c.input_bytes() > SMALL_INPUT)
                .min_by_key(|(_, c)| {
                    c.waiting_for_a_request()
                        .map_or(self.env.clock.now, |w| w.1)
                })
                .map(|(key, _)| key);
            let Some(key) = victim else {
                return;
            };
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let progress = guarded(|| conn.shed_input(&mut self.env.shared()));
            self.apply(key, progress);
        }
    }

    fn pause(&mut self, until: Instant) {
        if self.paused.is_none() {
            for l in &mut self.listeners {
                let _ = self.env.poll.registry().deregister(l);
            }
        }
        self.paused = Some(until);
    }

    /// Puts the listeners back in the poll once there is room again.
    fn resume_listeners(&mut self) {
        let Some(until) = self.paused else { return };
        let now = self.env.clock.now;
        if self.stopping.is_some() || now < until {
            return;
        }
        if self.conns.len() >= self.max_connections {
            match self.evict_check {
                Some(check) if now >= check => {
                    self.evict_check = None;
                    if self.make_room() == 0 || self.conns.len() >= self.max_connections {
                        self.evict_check.get_or_insert(now + EVICT_MIN_WAIT);
                        return;
                    }
                }
                _ => return,
            }
        }
        // Registering reports connections already waiting, so none is lost.
        let mut all = true;
        for (i, l) in self.listeners.iter_mut().enumerate() {
            all &= self
                .env
                .poll
                .registry()
                .register(l, Token(LISTENERS - i), Interest::READABLE)
                .is_ok();
        }
        if all {
            self.paused = None;
        }
    }

    fn on_ready(&mut self, token: Token, readable: bool, writable: bool, read_closed: bool) {
        let key = token.0 / TOKENS_PER_CONNECTION;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut shared = self.env.shared();
        let progress = match Source::from_index(token.0 % TOKENS_PER_CONNECTION) {
            Some(Source::Socket) => {
                guarded(|| conn.ready(readable, writable, read_closed, &mut shared))
            }
            Some(source) => guarded(|| conn.pipe_ready(source, &mut shared)),
            None => Progress::Wait,
        };
        self.apply(key, progress);
    }

    /// Workers have finished jobs: hand each answer to its connection, if
    /// that connection is still the one that asked.
    fn on_wake(&mut self) {
        if self.shutdown.load(Ordering::Relaxed) {
            self.begin_stop();
        }
        let answers = match &self.env.pool {
            Some(pool) => pool.take_answers(),
            None => return,
        };
        for answer in answers {
            let key = answer.key;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.generation() != answer.generation {
                continue;
            }
            let progress = guarded(|| conn.answered(answer, &mut self.env.shared()));
            self.apply(key, progress);
        }
    }

    /// Runs the connections that had work left, in turn. Once this turn's
    /// bulk budget is spent, the rest keep their place at the head of the
    /// queue for the next turn, so every sender gets its share.
    fn run_queued(&mut self) {
        let queue = std::mem::take(&mut self.run_queue);
        let mut next = 0;
        while next < queue.len() {
            let token = queue[next];
            let listener = token.0 > LISTENERS - MAX_LISTENERS && token.0 <= LISTENERS;
            if !listener && self.env.turn_bytes >= crate::server::connection::TURN_BUDGET {
                break;
            }
            next += 1;
            if listener {
                self.accept(LISTENERS - token.0);
                continue;
            }
            let key = token.0 / TOKENS_PER_CONNECTION;
            if let Some(conn) = self.conns.get_mut(key) {
                let progress = guarded(|| conn.pump(&mut self.env.shared()));
                self.apply(key, progress);
            }
        }
        if next < queue.len() {
            let queued_now = std::mem::take(&mut self.run_queue);
            self.run_queue = queue[next..].to_vec();
            self.run_queue.extend(queued_now);
        }
    }

    fn apply(&mut self, key: usize, progress: Progress) {
        for event in std::mem::take(&mut self.env.children) {
            match event {
                ChildEvent::Spawned { pid, deadline, key } => self.watch_child(pid, deadline, key),
                ChildEvent::StopGroup(pid) => self.stop_group(pid),
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            let held = conn.input_bytes();
            self.input_held = self.input_held - conn.charged.min(self.input_held) + held;
            conn.charged = held;
        }
        match progress {
            Progress::Wait => {}
            Progress::Again => self.run_queue.push(Token(key * TOKENS_PER_CONNECTION)),
            Progress::Later => self.later.push(Token(key * TOKENS_PER_CONNECTION)),
            Progress::Close => self.close(key),
        }
        if self.input_held > INPUT_BUDGET && !self.shedding {
            self.shedding = true;
            self.shed_input();
            self.shedding = false;
        }
    }

    fn close(&mut self, key: usize) {
        // Closing the socket takes it out of the poll: no deregister call.
        if let Some(conn) = self.conns.try_remove(key) {
            self.input_held -= conn.charged.min(self.input_held);
            // A script whose client is gone has no one to answer.
            if let Some((pid, holds_pipes)) = conn.cgi_child()
                && holds_pipes
            {
                self.stop_group(pid);
            }
        }
    }

    /// A script started: watched until reaped (its pidfd in the poll, so
    /// no signal is needed to learn that it exited).
    fn watch_child(&mut self, pid: u32, deadline: Instant, key: usize) {
        let pidfd = sys::pidfd_open(pid).filter(|fd| {
            let token = Token(CHILDREN + pid as usize);
            self.env
                .poll
                .registry()
                .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
                .is_ok()
        });
        // A pid reused by a new script: any old group of that id is gone
        // (the new one could not have been made), and so is its pending kill.
        self.children.insert(
            pid,
            Watched {
                deadline,
                terminated: false,
                key,
                reaped: false,
                pidfd,
            },
        );
    }

    /// A child's pidfd is readable: it exited.
    fn on_child(&mut self, pid: usize) {
        if let Ok(pid) = u32::try_from(pid) {
            self.reap(pid);
        }
    }

    /// SIGTERM to a script's whole process group now, SIGKILL after a grace
    /// period if the script is still there, and to the group regardless:
    /// what a script started may outlive it while holding its pipes.
    fn stop_group(&mut self, pid: u32) {
        let grace = self.env.clock.now + KILL_GRACE;
        let w = self.children.entry(pid).or_insert(Watched {
            deadline: grace,
            terminated: false,
            key: usize::MAX,
            reaped: true,
            pidfd: None,
        });
        if !w.terminated {
            child::terminate(pid, libc::SIGTERM);
            w.terminated = true;
            w.deadline = grace;
        }
    }

    /// Scripts past their deadline get SIGTERM, then SIGKILL.
    fn expire_children(&mut self) {
        let now = self.env.clock.now;
        let due: Vec<(u32, bool, bool)> = self
            .children
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(&pid, w)| (pid, w.terminated, w.reaped))
            .collect();
        for (pid, terminated, reaped) in due {
            if !terminated {
                self.stop_group(pid);
                continue;
            }
            child::terminate(pid, libc::SIGKILL);
            if reaped {
                self.children.remove(&pid);
            } else if let Some(w) = self.children.get_mut(&pid) {
                w.deadline = now + KILL_GRACE;
            }
        }
    }

    /// Reaps every watched child that has exited (once a second, in case a
    /// pidfd was missing or its event lost).
    fn reap_children(&mut self) {
        let pids: Vec<u32> = self
            .children
            .iter()
            .filter(|(_, w)| !w.reaped)
            .map(|(&pid, _)| pid)
            .collect();
        for pid in pids {
            self.reap(pid);
        }
    }

    /// Collects `pid` if it has exited (never blocking, and never another
    /// process's child: a library's server must not steal its user's).
    fn reap(&mut self, pid: u32) {
        let Some(status) = child::reap(pid) else {
            return;
        };
        self.env.scripts = self.env.scripts.saturating_sub(1);
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -libc::WTERMSIG(status)
        };
        if code != 0 {
            self.env
                .log
                .server_note(&format!("CGI script {pid} exit code {code}"));
        }
        let Some(w) = self.children.get_mut(&pid) else {
            return;
        };
        w.pidfd = None;
        let key = w.key;
        if w.terminated {
            // Its group is sent SIGKILL at the deadline, for whatever it
            // left behind.
            w.reaped = true;
        } else {
            self.children.remove(&pid);
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.script_exited(pid, &self.env.clock);
        }
    }

    /// Handles connections whose deadline has passed. Called once a second:
    /// one pass over the slab, no timer syscalls.
    fn expire(&mut self) {
        let now = self.env.clock.now;
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            if let Some(conn) = self.conns.get_mut(key) {
                let progress = guarded(|| conn.timed_out(&mut self.env.shared()));
                self.apply(key, progress);
            }
        }
    }

    fn on_signal(&mut self) {
        let Some(signals) = &self.signals else {
            return;
        };
        let mut any = false;
        while sys::read_signal(signals).is_some() {
            any = true;
        }
        if !any {
            return;
        }
        if self.stopping.is_some() {
            // A second signal: stop waiting for anyone.
            self.stopping = Some(self.env.clock.now);
            return;
        }
        if let Some(message) = self.stop_message {
            let mut stdout = io::stdout();
            let _ = writeln!(stdout, "\n{message}");
            let _ = stdout.flush();
        }
        self.begin_stop();
    }

    /// Stops accepting, closes idle connections, and gives the others a
    /// grace period to finish.
    fn begin_stop(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(self.env.clock.now + SHUTDOWN_GRACE);
        self.pause(self.env.clock.now);
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_idle())
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.close(key);
        }
    }

    /// At exit: no script outlives the server.
    fn stop_all_children(&mut self) {
        let pids: Vec<u32> = self.children.keys().copied().collect();
        for &pid in &pids {
            child::terminate(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + KILL_GRACE;
        while self.children.values().any(|w| !w.reaped) && Instant::now() < deadline {
            self.reap_children();
            std::thread::sleep(Duration::from_millis(10));
        }
        for &pid in self.children.keys() {
            child::terminate(pid, libc::SIGKILL);
        }
        self.reap_children();
    }
}

/// Runs one connection's work so that a bug that panics costs that one
/// connection, not the server: the panic message goes to stderr (the
/// default hook prints it) and the connection is closed. This is the panic
/// policy; nothing reachable from input is known to panic.
fn guarded(work: impl FnOnce() -> Progress) -> Progress {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or(Progress::Close)
}

/// The soft limit on open descriptors.
pub fn open_file_limit() -> usize {
    // SAFETY: getrlimit only writes the struct we pass.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    usize::try_from(lim.rlim_cur)
        .unwrap_or(usize::MAX)
        .min(1 << 20)
}
