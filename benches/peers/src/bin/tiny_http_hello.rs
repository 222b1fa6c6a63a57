//! tiny_http, one thread taking requests: `tiny_http_hello PORT`.

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8080".into());
    let server = tiny_http::Server::http(format!("127.0.0.1:{port}")).expect("bind");
    println!("Serving HTTP on 127.0.0.1 port {port}");
    let content_type: tiny_http::Header = "Content-Type: text/plain".parse().expect("header");
    for request in server.incoming_requests() {
        let response =
            tiny_http::Response::from_string("Hello, world!\n").with_header(content_type.clone());
        let _ = request.respond(response);
    }
}
