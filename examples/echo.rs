//! Echoes the request body, for every method, with strict HTTP/1.1 framing:
//! what conformance checkers such as h1spec expect.
//!
//! `cargo run --release --example echo -- 8080`, then
//! `curl --data-binary hello http://127.0.0.1:8080/`.

use tinyserve::{Exchange, ServerBuilder};

fn echo(r: &mut Exchange) {
    r.read_body(1 << 20, |r, body| {
        r.send_response(200);
        r.send_header("Content-Type", "application/octet-stream");
        r.send_header_num("Content-Length", body.len() as u64);
        r.end_headers();
        r.write(&body);
    });
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .handle_signals(true)
        .build(echo)?;
    println!(
        "Serving HTTP on 127.0.0.1 port {}",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
