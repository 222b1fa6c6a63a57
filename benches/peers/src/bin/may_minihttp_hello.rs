//! may_minihttp with one worker: `may_minihttp_hello PORT`.

use may_minihttp::{HttpServer, HttpService, Request, Response};
use std::io;

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _req: Request, rsp: &mut Response) -> io::Result<()> {
        rsp.header("Content-Type: text/plain").body("Hello, world!\n");
        Ok(())
    }
}

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8080".into());
    may::config().set_workers(1);
    let server = HttpServer(Hello).start(format!("127.0.0.1:{port}")).expect("bind");
    println!("Serving HTTP on 127.0.0.1 port {port}");
    let _ = server.join();
}
