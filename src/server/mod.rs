//! The server: one `mio::Poll` on one thread, a slab of connection state
//! machines, and the few system calls they need. This is where bytes move;
//! what they say is decided by the [`Handler`].
//!
//! ```no_run
//! use tinyserve::{Exchange, ServerBuilder};
//!
//! let mut server = ServerBuilder::new()
//!     .bind("127.0.0.1:8080")?
//!     .build(|r: &mut Exchange| {
//!         r.send_response(200);
//!         r.end_headers();
//!         r.write(b"hi\n");
//!     })?;
//! server.serve_forever()?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod child;
pub mod clock;
pub mod connection;
pub mod log;
pub mod reactor;
pub mod sys;
pub mod workers;

use crate::handler::{Config, ExpectContinue, Handler, Protocol};
pub use connection::Timeouts;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The handler a server runs, and where: on the loop, or (a threaded
/// server) every request on a worker thread.
pub(crate) enum Dispatch {
    Loop(Rc<dyn Handler>),
    Threaded(Arc<dyn Handler + Send + Sync>),
}

/// What the built-in handlers keep between requests, on the loop: the
/// cache of open files, the listings being built or sent, and buffers
/// reused from request to request so answering does not allocate.
pub struct Services {
    /// `None` when inotify is unavailable: every request then opens.
    pub(crate) cache: Option<crate::handlers::cache::FileCache>,
    pub(crate) listings: crate::handlers::listing::Listings,
    /// The path being served, kept from request to request.
    pub(crate) path: Vec<u8>,
    /// This turn of the loop (listings are read a step per turn).
    pub(crate) now: std::time::Instant,
}

impl Default for Services {
    fn default() -> Services {
        Services {
            cache: None,
            listings: Default::default(),
            path: Vec::new(),
            now: std::time::Instant::now(),
        }
    }
}

/// Sets a server up: where it listens, how it answers, its limits.
///
/// Defaults: HTTP/1.1 with keep-alive; `Server: tinyserve/VERSION`;
/// `100 Continue` only when a handler reads the body; no HTTP/0.9; `Host`
/// required of HTTP/1.1 requests; 1 MiB bodies for `read_body`; timeouts
/// of 10 s for a head, 60 s idle, 30 s for a stalled send, 60 s for a CGI
/// script and for deferred work; connections limited by the open-file
/// limit; 4 worker threads (started on first use) with 64 waiting jobs;
/// the access log on stderr; signals left alone.
pub struct ServerBuilder {
    listeners: Vec<std::net::TcpListener>,
    config: Config,
    timeouts: Timeouts,
    max_connections: Option<usize>,
    quiet: bool,
    log_to: Option<crate::server::log::LogFn>,
    workers: usize,
    queue: usize,
    defer_timeout: Duration,
    max_body_memory: usize,
    max_scripts: usize,
    handle_signals: bool,
    stop_message: Option<&'static str>,
    release_idle_memory: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            listeners: Vec::new(),
            config: Config::default(),
            timeouts: Timeouts {
                head: Duration::from_secs(10),
                idle: Duration::from_secs(60),
                send: Duration::from_secs(30),
                linger: Duration::from_secs(2),
                cgi: Duration::from_secs(60),
            },
            max_connections: None,
            quiet: false,
            log_to: None,
            workers: 4,
            queue: 64,
            defer_timeout: Duration::from_secs(60),
            max_body_memory: 64 << 20,
            max_scripts: 64,
            handle_signals: false,
            stop_message: None,
            release_idle_memory: false,
        }
    }

    /// Listens on `addr` (`"127.0.0.1:8080"`, `"[::]:0"` for IPv6 and IPv4
    /// on a free port...). Call it again for more listeners.
    pub fn bind(mut self, addr: impl ToSocketAddrs) -> io::Result<ServerBuilder> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        self.listeners.push(sys::listen(addr, 1024)?);
        Ok(self)
    }

    /// Listens on a socket you made (it is made non-blocking).
    pub fn listener(mut self, listener: std::net::TcpListener) -> ServerBuilder {
        self.listeners.push(listener);
        self
    }

    /// Python's `protocol_version`: HTTP/1.0 closes after every answer.
    pub fn protocol(mut self, protocol: Protocol) -> ServerBuilder {
        self.config.protocol = protocol;
        self
    }

    /// The `Server` header (Python's `server_version` and `sys_version`).
    /// Control characters become spaces: the value goes out as it is.
    pub fn server_version(mut self, version: &str) -> ServerBuilder {
        let clean: String = version
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.config.server = clean.into();
        self
    }

    /// A header sent on every response. Names that are not tokens and
    /// values with control bytes are refused.
    pub fn header(mut self, name: &str, value: &str) -> io::Result<ServerBuilder> {
        if !crate::proto::request::is_token(name.as_bytes())
            || value.chars().any(|c| c.is_control() && c != '\t')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad header {name:?}: {value:?}"),
            ));
        }
        let mut lines = self.config.extra_headers.to_vec();
        lines.extend_from_slice(format!("{name}: {}\r\n", value.trim()).as_bytes());
        self.config.extra_headers = lines.into();
        Ok(self)
    }

    pub fn expect_continue(mut self, when: ExpectContinue) -> ServerBuilder {
        self.config.expect_continue = when;
        self
    }

    /// Answer two-word request lines (`GET /`) with a bare body, as Python.
    pub fn http09(mut self, yes: bool) -> ServerBuilder {
        self.config.http09 = yes;
        self
    }

    /// Refuse HTTP/1.1 requests without `Host` (RFC 9112 3.2; the default).
    pub fn require_host(mut self, yes: bool) -> ServerBuilder {
        self.config.require_host = yes;
        self
    }

    /// The default limit of `Exchange::read_body`, and of bodies read for
    /// a threaded server's handlers.
    pub fn max_body(mut self, bytes: u64) -> ServerBuilder {
        self.config.max_body = bytes;
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> ServerBuilder {
        self.timeouts = timeouts;
        self
    }

    /// Most connections at once; by default half of what the open-file
    /// limit leaves (each connection may hold a file being sent too). At
    /// most [`ServerBuilder::connection_ceiling`]: more would run out of
    /// descriptors before the limit is reached.
    pub fn max_connections(mut self, n: usize) -> ServerBuilder {
        self.max_connections = Some(n);
        self
    }

    /// The most connections the open-file limit leaves room for.
    pub fn connection_ceiling() -> usize {
        reactor::open_file_limit().saturating_sub(32).max(16)
    }

    /// No access log.
    pub fn quiet(mut self, yes: bool) -> ServerBuilder {
        self.quiet = yes;
        self
    }

    /// Access log lines go to `f` (each line ends in `\n`), not to stderr.
    pub fn log_to(mut self, f: impl FnMut(&[u8]) + 'static) -> ServerBuilder {
        self.log_to = Some(Box::new(f));
        self
    }

    /// Worker threads for deferred work (and a threaded server), and how
    /// many jobs may wait for one; beyond that a request gets 503.
    pub fn workers(mut self, threads: usize, queue: usize) -> ServerBuilder {
        self.workers = threads.max(1);
        self.queue = queue;
        self
    }

    /// How long deferred work may take before the client gets 504.
    /// Request bodies read whole (`read_body`, bodies read for workers)
    /// that the server holds at once, all connections together: past it a
    /// body is refused with 503. Default 64 MiB.
    pub fn max_body_memory(mut self, bytes: usize) -> ServerBuilder {
        self.max_body_memory = bytes;
        self
    }

    /// CGI scripts running at once; past it a request for one gets 503.
    /// Default 64.
    pub fn max_scripts(mut self, n: usize) -> ServerBuilder {
        self.max_scripts = n;
        self
    }

    pub fn defer_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.defer_timeout = timeout;
        self
    }

    /// Stop on SIGINT and SIGTERM (they are then blocked for the process,
    /// and read from a signalfd). Off by default: the process's signals
    /// are yours.
    pub fn handle_signals(mut self, yes: bool) -> ServerBuilder {
        self.handle_signals = yes;
        self
    }

    /// After 10 s with nothing to do (no connection, script or job), give
    /// back the resident pages of code and constants that are clean copies
    /// of their files (Linux: `madvise(MADV_DONTNEED)` on mappings
    /// `/proc/self/smaps` shows never written), so an idle server's RSS is
    /// what idling needs; the first request after costs their page faults.
    /// Off by default; the command line turns it on.
    pub fn release_idle_memory(mut self, yes: bool) -> ServerBuilder {
        self.release_idle_memory = yes;
        self
    }

    /// Printed on stdout when a stop signal comes.
    pub fn stop_message(mut self, message: &'static str) -> ServerBuilder {
        self.stop_message = Some(message);
        self
    }

    fn options(self) -> (Vec<std::net::TcpListener>, reactor::Options) {
        let ceiling = ServerBuilder::connection_ceiling();
        let options = reactor::Options {
            config: Arc::new(self.config),
            timeouts: self.timeouts,
            // Leave room for files being sent and the process's own
            // descriptors.
            max_connections: self
                .max_connections
                .map_or((ceiling / 2).max(16), |n| n.min(ceiling)),
            quiet: self.quiet,
            log_to: self.log_to,
            workers: self.workers,
            queue: self.queue,
            defer_timeout: self.defer_timeout,
            max_body_memory: self.max_body_memory,
            max_scripts: self.max_scripts,
            handle_signals: self.handle_signals,
            stop_message: self.stop_message,
            release_idle_memory: self.release_idle_memory,
        };
        (self.listeners, options)
    }

    /// The server, with `handler` answering on the loop.
    pub fn build(self, handler: impl Handler + 'static) -> io::Result<Server> {
        let (listeners, options) = self.options();
        let reactor = reactor::Reactor::new(listeners, Dispatch::Loop(Rc::new(handler)), options)?;
        Ok(Server { reactor })
    }

    /// The server, with every request handled on a worker thread, as
    /// Python's `ThreadingHTTPServer` does: blocking handler code works
    /// unchanged. The request body (up to `max_body`) is read before the
    /// handler runs.
    pub fn threaded(self, handler: impl Handler + Send + Sync + 'static) -> io::Result<Server> {
        let (listeners, options) = self.options();
        let reactor =
            reactor::Reactor::new(listeners, Dispatch::Threaded(Arc::new(handler)), options)?;
        Ok(Server { reactor })
    }
}

/// A server, ready to serve (Python's `HTTPServer`).
pub struct Server {
    reactor: reactor::Reactor,
}

impl Server {
    /// A server on `addr` with the default settings.
    pub fn bind(addr: impl ToSocketAddrs, handler: impl Handler + 'static) -> io::Result<Server> {
        ServerBuilder::new().bind(addr)?.build(handler)
    }

    /// Where it listens (the port chosen for port 0 included).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.reactor.local_addrs()
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local_addrs()
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::other("no listener"))
    }

    /// A handle that stops the server from another thread (or a signal
    /// handler of yours).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        let (flag, waker) = self.reactor.shutdown_parts();
        ShutdownHandle { flag, waker }
    }

    /// Serves until stopped, then lets answers in flight finish (3 s at
    /// most) and stops CGI scripts.
    pub fn serve_forever(&mut self) -> io::Result<()> {
        self.reactor.run()
    }
}

/// Stops a server from any thread: it takes no new connections, closes
/// idle ones, and returns from `serve_forever` once the rest are done.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}
