//! The benchmark handler: HTTP/1.1 keep-alive, `Hello, world!` with its
//! length. `--quiet` turns the access log off.
//!
//! `cargo run --release --example hello -- 8080 --quiet`, then
//! `wrk -c 50 http://127.0.0.1:8080/`.

use tinyserve::{Exchange, ServerBuilder};

fn hello(r: &mut Exchange) {
    r.send_response(200);
    r.send_header("Content-Type", "text/plain");
    r.send_header_num("Content-Length", 14);
    r.end_headers();
    r.write(b"Hello, world!\n");
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(8080);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .quiet(args.iter().any(|a| a == "--quiet"))
        .handle_signals(true)
        .build(hello)?;
    println!(
        "Serving HTTP on 127.0.0.1 port {}",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
