//! A directory served by the built-in file handler, and `/api/time`
//! answered by code: `SimpleHTTPRequestHandler` subclassed.
//!
//! `cargo run --release --example site -- 8080 DIR`, then
//! `curl http://127.0.0.1:8080/api/time`.

use tinyserve::{Exchange, FileHandler, Handler, ServerBuilder};

struct Site {
    files: FileHandler,
}

impl Handler for Site {
    fn handle(&self, r: &mut Exchange) {
        if r.url_path() == "/api/time" {
            r.send_response(200);
            r.send_header("Content-Type", "text/plain");
            r.end_headers();
            r.write(format!("{}\n", r.now()).as_bytes());
        } else {
            self.files.handle(r); // Python's super().do_GET()
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let files = FileHandler::new(args.next().unwrap_or_else(|| ".".into()))?;
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .build(Site { files })?;
    println!(
        "Serving HTTP on 127.0.0.1 port {}",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
