//! PyMOTW's `http_server_errors.py`: every GET gets Python's 404 page.
//!
//! `cargo run --release --example http_server_errors -- 8084`, then
//! `curl -i http://127.0.0.1:8084/`.

use tinyserve::{Exchange, Handler, Protocol, ServerBuilder};

struct ErrorHandler;

impl Handler for ErrorHandler {
    fn do_get(&self, r: &mut Exchange) {
        r.send_error(404, None, None);
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8084);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .protocol(Protocol::Http10)
        .handle_signals(true)
        .build(ErrorHandler)?;
    println!(
        "Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
