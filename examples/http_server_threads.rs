//! PyMOTW's `http_server_threads.py`: `ThreadingHTTPServer`. Every request
//! runs on a worker thread, so handler code may block the Python way;
//! `?sleep=S` makes it block S seconds (at most 30) first. The loop keeps
//! serving meanwhile: four `?sleep=1` at once take about one second.
//!
//! `cargo run --release --example http_server_threads -- 8083`, then
//! `curl http://127.0.0.1:8083/?sleep=1`.

use std::time::Duration;
use tinyserve::{Exchange, Handler, Protocol, ServerBuilder};

struct Handler_;

impl Handler for Handler_ {
    fn do_get(&self, r: &mut Exchange) {
        let sleep = r
            .query()
            .split('&')
            .find_map(|kv| kv.strip_prefix("sleep=")?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if sleep > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(sleep.min(30.0)));
        }
        r.send_response(200);
        r.send_header("Content-Type", "text/plain; charset=utf-8");
        r.end_headers();
        let name = std::thread::current().name().unwrap_or("?").to_string();
        r.write(name.as_bytes());
        r.write(b"\n");
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8083);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .protocol(Protocol::Http10)
        .workers(16, 256)
        .handle_signals(true)
        .threaded(Handler_)?;
    println!(
        "Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
