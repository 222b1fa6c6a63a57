//! tinyserve: a small, single-threaded, event-driven HTTP/1.1 server that is
//! a drop-in replacement for `python3 -m http.server`.
//!
//! The protocol modules know nothing of sockets: they turn bytes and paths
//! into decisions and bytes (`request`, `urlpath`, `respond`, `files`,
//! `listing`, `response`, `mime`, `status`, `escape`, `log`). The `reactor`
//! and `connection` modules move those bytes between sockets and files.

pub mod cache;
pub mod cgi;
pub mod child;
pub mod chunked;
pub mod cli;
pub mod clock;
pub mod conditional;
pub mod connection;
pub mod escape;
pub mod files;
pub mod listing;
pub mod log;
pub mod mime;
pub mod range;
pub mod reactor;
pub mod request;
pub mod respond;
pub mod response;
pub mod status;
pub mod sys;
pub mod urlpath;
