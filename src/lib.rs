//! tinyserve: a small, single-threaded, event-driven HTTP/1.1 server, and
//! the library it is built on: Python's `http.server` in Rust.
//!
//! The command line is a drop-in for `python3 -m http.server`. The library
//! is the other half of Python's module: write a [`Handler`] (Python's
//! `BaseHTTPRequestHandler`, with `do_get`, `do_post`...), answer through
//! the [`Exchange`] it is given (`send_response`, `send_header`,
//! `end_headers`, `write`, `send_error`), and run it on a [`Server`]: one
//! `mio` loop on one thread, with worker threads only for work a handler
//! defers ([`Exchange::defer`]) or for a threaded server
//! ([`ServerBuilder::threaded`], Python's `ThreadingHTTPServer`). The file
//! server ([`FileHandler`], Python's `SimpleHTTPRequestHandler`) and CGI
//! ([`CgiHandler`]) are handlers too, to wrap or fall back to.
//!
//! ```
//! use tinyserve::{Exchange, FileHandler, Handler, ServerBuilder};
//!
//! /// `/api/time` from code, everything else from a directory.
//! struct Site {
//!     files: FileHandler,
//! }
//!
//! impl Handler for Site {
//!     fn do_get(&self, r: &mut Exchange) {
//!         if r.url_path() == "/api/time" {
//!             r.send_response(200);
//!             r.send_header("Content-Type", "text/plain");
//!             r.end_headers();
//!             let now = r.now().to_string();
//!             r.write(now.as_bytes());
//!         } else {
//!             self.files.do_get(r); // Python's super().do_GET()
//!         }
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let site = Site { files: FileHandler::new(".")? };
//! let mut server = ServerBuilder::new().bind("127.0.0.1:0")?.build(site)?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! let client = std::thread::spawn(move || {
//!     use std::io::{Read, Write};
//!     let ask = || -> std::io::Result<String> {
//!         let mut c = std::net::TcpStream::connect(addr)?;
//!         c.write_all(b"GET /api/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//!         let mut answer = String::new();
//!         c.read_to_string(&mut answer)?;
//!         Ok(answer)
//!     };
//!     let answer = ask();
//!     stop.shutdown(); // whatever the client saw, so the example ends
//!     answer
//! });
//! server.serve_forever()?;
//! let answer = client
//!     .join()
//!     .map_err(|_| std::io::Error::other("the client thread panicked"))??;
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! # Ok(())
//! # }
//! ```
//!
//! The layers, from the bottom: [`proto`], the protocol core, plain code
//! over bytes that knows no sockets; [`server`], the reactor and the
//! connections, which move bytes; [`handler`], the API handlers are
//! written against; [`handlers`], the file server and CGI, built on it;
//! [`cli`], the command line, on top.

pub mod cli;
pub mod form;
pub mod handler;
pub mod handlers;
pub mod proto;
pub mod server;

pub use form::{Form, FormLimits, UploadedFile};
pub use handler::{
    BodyError, BodyHandler, BodySource, CgiCommand, Config, Exchange, ExpectContinue, Handler,
    Headers, Poll, Protocol,
};
pub use handlers::cgi::CgiHandler;
pub use handlers::files::FileHandler;
pub use server::{Server, ServerBuilder, ShutdownHandle, Timeouts};
