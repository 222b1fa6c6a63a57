//! PyMOTW's `http_server_send_header.py`: a header of our own,
//! `Last-Modified` set to now.
//!
//! `cargo run --release --example http_server_headers -- 8085`, then
//! `curl -i http://127.0.0.1:8085/`.

use tinyserve::{Exchange, Handler, Protocol, ServerBuilder};

struct GetHandler;

impl Handler for GetHandler {
    fn do_get(&self, r: &mut Exchange) {
        r.send_response(200);
        r.send_header("Content-Type", "text/plain; charset=utf-8");
        let now = r.date_time_string().to_string();
        r.send_header("Last-Modified", &now);
        r.end_headers();
        r.write(b"Response body\n");
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8085);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .protocol(Protocol::Http10)
        .handle_signals(true)
        .build(GetHandler)?;
    println!(
        "Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
