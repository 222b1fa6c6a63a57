//! tinyserve: a small, single-threaded, event-driven HTTP/1.1 server that is
//! a drop-in replacement for `python3 -m http.server`.
//!
//! The layers, from the bottom:
//!
//! - [`proto`]: the protocol core, plain code over bytes and paths that
//!   knows no sockets: request heads, chunked bodies, response heads and
//!   Python's error page, status phrases, conditional requests, ranges,
//!   URL paths, escapes, content types.
//! - [`server`]: the reactor (one `mio` loop on one thread) and the
//!   connections, which move bytes between sockets, files and pipes.
//! - [`handlers`]: the static file server (files, listings, the file cache)
//!   and CGI.
//! - [`cli`]: the command line, on top.

pub mod cli;
pub mod handlers;
pub mod proto;
pub mod respond;
pub mod server;
