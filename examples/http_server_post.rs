//! PyMOTW's `http_server_POST.py`: a posted form (multipart with files, or
//! urlencoded) parsed and described, without `cgi.FieldStorage` (which
//! Python 3.13 removed). Uploads stream: a file past 64 KiB goes to a
//! temporary file, so a 1 GiB upload leaves memory flat.
//!
//! `cargo run --release --example http_server_post -- 8081`, then
//! `curl http://127.0.0.1:8081/ -F name=alvin -F foo=bar -F datafile=@Cargo.toml`.

use std::fmt::Write as _;
use tinyserve::proto::escape::py_repr_str;
use tinyserve::{Exchange, FormLimits, Handler, Protocol, ServerBuilder};

struct PostHandler;

impl Handler for PostHandler {
    fn do_post(&self, r: &mut Exchange) {
        let limits = FormLimits {
            max_files: 4 << 30,
            ..FormLimits::default()
        };
        r.read_form(limits, |r, form| {
            let client = r.client_address();
            let mut out = String::new();
            let _ = writeln!(out, "Client: ('{}', {})", client.ip(), client.port());
            let _ = writeln!(
                out,
                "User-agent: {}",
                r.header("User-Agent").unwrap_or("None")
            );
            let _ = writeln!(out, "Path: {}", r.path());
            out.push_str("Form data:\n");
            for (name, value) in &form.fields {
                let _ = writeln!(out, "\t{name}={value}");
            }
            for file in &form.files {
                let _ = writeln!(
                    out,
                    "\tUploaded {} as {} ({} bytes)",
                    file.field,
                    py_repr_str(&file.filename),
                    file.len
                );
            }

            r.send_response(200);
            r.send_header("Content-Type", "text/plain; charset=utf-8");
            r.end_headers();
            r.write(out.as_bytes());
        });
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let mut server = ServerBuilder::new()
        .bind(("127.0.0.1", port))?
        .protocol(Protocol::Http10)
        .handle_signals(true)
        .build(PostHandler)?;
    println!(
        "Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop",
        server.local_addr()?.port()
    );
    server.serve_forever()
}
