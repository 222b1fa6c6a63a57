//! PyMOTW's `http_server_GET.py`: every GET answered with what the handler
//! sees of the request and the server.
//!
//! `cargo run --release --example http_server_get -- 8080`, then
//! `curl -i 'http://127.0.0.1:8080/?foo=bar'`.

use std::net::SocketAddr;
use tinyserve::{Exchange, Handler, Protocol, ServerBuilder};

struct GetHandler;

impl Handler for GetHandler {
    fn do_get(&self, r: &mut Exchange) {
        let client = r.client_address();
        let (server_version, sys_version) = r
            .version_string()
            .split_once(' ')
            .unwrap_or((r.version_string(), ""));
        let mut lines = vec![
            "CLIENT VALUES:".to_string(),
            format!("client_address={} ({})", py_address(client), client.ip()),
            format!("command={}", r.command()),
            format!("path={}", r.path()),
            format!("real path={}", r.url_path()),
            format!("query={}", r.query()),
            format!("request_version={}", r.request_version()),
            String::new(),
            "SERVER VALUES:".to_string(),
            format!("server_version={server_version}"),
            format!("sys_version={sys_version}"),
            format!("protocol_version={}", r.protocol_version()),
            String::new(),
            "HEADERS RECEIVED:".to_string(),
        ];
        // Python reads header bytes as Latin-1 and sorts (name, value).
        let mut headers: Vec<(&[u8], &[u8])> = r.headers().iter_bytes().collect();
        headers.sort();
        for (name, value) in headers {
            let value: String = value.iter().map(|&b| char::from(b)).collect();
            lines.push(format!("{}={}", latin1(name), value.trim_end()));
        }
        lines.push(String::new());
        let message = lines.join("\r\n");

        r.send_response(200);
        r.send_header("Content-Type", "text/plain; charset=utf-8");
        r.end_headers();
        r.write(message.as_bytes());
    }
}

/// `('127.0.0.1', 61595)`, as Python prints `client_address`.
fn py_address(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("('{}', {})", a.ip(), a.port()),
        SocketAddr::V6(a) => format!(
            "('{}', {}, {}, {})",
            a.ip(),
            a.port(),
            a.flowinfo(),
            a.scope_id()
        ),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .protocol(Protocol::Http10) // Python's default protocol_version
        .handle_signals(true)
        .build(GetHandler)?;
    println!(
        "Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
