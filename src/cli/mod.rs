//! The command line, as Python 3.13's `python3 -m http.server` has it, and
//! the start-up: bind, print the banner, serve.

mod args;

pub use args::{Cli, MAX_TIMEOUT_SECS};

use crate::handler::{Exchange, ExpectContinue, Handler, Protocol};
use crate::handlers::cgi::CgiHandler;
use crate::handlers::files::FileHandler;
use crate::server::{ServerBuilder, Timeouts};
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Headers the server writes itself, per response: `-H` may not add a
/// second one (two `Content-Length`s would let clients disagree on where
/// the body ends).
const SERVER_OWNED: [&str; 18] = [
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Upgrade",
    "Trailer",
    "TE",
    "Date",
    "Server",
    "Content-Type",
    "Content-Range",
    "Content-Encoding",
    "ETag",
    "Last-Modified",
    "Location",
    "Accept-Ranges",
    "Vary",
    "Retry-After",
];

/// What `--cors` sets: `-H` may not add a second one next to it.
const CORS_OWNED: [&str; 5] = [
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
];

/// A start-up failure, said in one line.
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn main() -> ExitCode {
    let cli = match args::parse(std::env::args_os().skip(1)) {
        args::Parsed::Run(cli) => cli,
        args::Parsed::Help => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        args::Parsed::Version => {
            println!("tinyserve {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        args::Parsed::Error(e) => {
            eprintln!("tinyserve: {} (see --help)", printable(&e));
            return ExitCode::from(2);
        }
    };
    // A bad -H is a mistake in the arguments too (exit 2), said before a
    // port is taken.
    let extra_headers = match extra_headers(&cli) {
        Ok(headers) => headers,
        Err(e) => {
            eprintln!("tinyserve: {} (see --help)", printable(&e.0));
            return ExitCode::from(2);
        }
    };
    match start(&cli, extra_headers) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tinyserve: {}", printable(&e.0));
            ExitCode::FAILURE
        }
    }
}

/// A message as one line of text: what an argument brought in (an escape
/// sequence, a newline) is shown escaped, never sent to the terminal.
fn printable(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn start(cli: &Cli, extra_headers: Vec<(String, String)>) -> Result<(), StartError> {
    let listener = bind(cli.bind.as_deref(), cli.port)?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the bound address: {e}")))?;
    let handler = handler(cli, bound)?;
    raise_open_file_limit();
    let mut builder = ServerBuilder::new()
        .listener(listener)
        .protocol(if cli.protocol == "HTTP/1.0" {
            Protocol::Http10
        } else {
            Protocol::Http11
        })
        // Python's answers where they differ from the library's defaults.
        .http09(true)
        .require_host(false)
        .expect_continue(ExpectContinue::Always)
        .timeouts(Timeouts {
            head: Duration::from_secs(cli.header_timeout),
            idle: Duration::from_secs(cli.idle_timeout),
            send: Duration::from_secs(cli.send_timeout),
            linger: Duration::from_secs(2),
            cgi: Duration::from_secs(cli.cgi_timeout),
        })
        .quiet(cli.quiet)
        .handle_signals(true)
        .release_idle_memory(true)
        .stop_message("Keyboard interrupt received, exiting.");
    for (name, value) in &extra_headers {
        builder = builder
            .header(name, value)
            .map_err(|e| StartError(format!("bad header for -H: {e}")))?;
    }
    if let Some(n) = cli.max_connections {
        let ceiling = ServerBuilder::connection_ceiling();
        if n > ceiling {
            eprintln!(
                "tinyserve: --max-connections {n} is more than the open-file limit leaves room for; using {ceiling}"
            );
        }
        builder = builder.max_connections(n);
    }
    let mut server = builder
        .build(handler)
        .map_err(|e| StartError(format!("cannot start: {e}")))?;
    let addr = server
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the bound address: {e}")))?;
    print_banner(addr);
    // Start-up (argument parsing, the dynamic loader's work, glibc's own
    // set-up) touched pages the loop never needs again: let them go, so
    // an idle server's RSS is what serving uses (README, "Idle memory").
    crate::server::sys::release_clean_file_pages();
    server
        .serve_forever()
        .map_err(|e| StartError(format!("event loop failed: {e}")))
}

/// What the command line serves: the directory, through CGI with `--cgi`,
/// and CORS preflight answers with `--cors`.
fn handler(cli: &Cli, bound: SocketAddr) -> Result<CliHandler, StartError> {
    let dir = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()
            .map_err(|e| StartError(format!("cannot read the current directory: {e}")))?,
    };
    let files = FileHandler::new(&dir)
        .map_err(|e| StartError(format!("cannot serve directory '{}': {e}", dir.display())))?
        .contain_symlinks(cli.contain_symlinks)
        .rich_listing(cli.rich_listing);
    let inner: Box<dyn Handler> = if cli.cgi {
        Box::new(CgiHandler::new(
            files,
            &server_name(bound.ip()),
            bound.port(),
        ))
    } else {
        Box::new(files)
    };
    Ok(CliHandler {
        inner,
        cors: cli.cors,
        cgi: cli.cgi,
    })
}

/// The command line's handler: the file (or CGI) handler, and with
/// `--cors` the answers to preflight requests.
struct CliHandler {
    inner: Box<dyn Handler>,
    cors: bool,
    cgi: bool,
}

impl Handler for CliHandler {
    fn handle(&self, r: &mut Exchange) {
        if self.cors && r.command_bytes() == b"OPTIONS" {
            return preflight(r, self.cgi);
        }
        self.inner.handle(r);
    }
}

/// A CORS preflight (`--cors`): which methods and headers may be used.
/// Without `--cors`, OPTIONS is 501 as in Python.
fn preflight(r: &mut Exchange, cgi: bool) {
    r.send_response(204);
    r.send_header(
        "Access-Control-Allow-Methods",
        if cgi {
            "GET, HEAD, POST, OPTIONS"
        } else {
            "GET, HEAD, OPTIONS"
        },
    );
    // Echoed only if it is what it should be, a list of field names: a
    // value copied from a request never carries anything else into ours.
    if let Some(asked) = r.headers().get_bytes("Access-Control-Request-Headers")
        && is_token_list(asked)
    {
        r.send_header_bytes("Access-Control-Allow-Headers", asked);
    }
    r.send_header("Access-Control-Max-Age", "86400");
    r.end_headers();
}

/// `token *( OWS "," OWS token )`, nothing else.
fn is_token_list(value: &[u8]) -> bool {
    use crate::proto::request::{is_token, trim_ows};
    value
        .split(|&b| b == b',')
        .all(|item| is_token(trim_ows(item)))
}

/// The headers `-H`, `--cors` and `--no-cache` add to every response.
fn extra_headers(cli: &Cli) -> Result<Vec<(String, String)>, StartError> {
    let mut headers = Vec::new();
    for h in &cli.headers {
        let shown = crate::proto::escape::py_repr_latin1(h.as_bytes());
        let bad = |why: &str| StartError(format!("bad header {shown} for -H: {why}"));
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| bad("expected 'Name: value'"))?;
        let name = name.trim_start();
        if name.ends_with([' ', '\t']) {
            return Err(bad("no space may come before the colon"));
        }
        if !crate::proto::request::is_token(name.as_bytes()) {
            return Err(bad("the name must be a token (letters, digits, -...)"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("control characters are not allowed in the value"));
        }
        if let Some(owned) = SERVER_OWNED.iter().find(|o| o.eq_ignore_ascii_case(name)) {
            return Err(bad(&format!(
                "{owned} is set by the server for each response"
            )));
        }
        if cli.cors && CORS_OWNED.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(bad("--cors already sets it"));
        }
        if cli.no_cache && name.eq_ignore_ascii_case("Cache-Control") {
            return Err(bad("--no-cache already sets Cache-Control"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    if cli.cors {
        headers.push(("Access-Control-Allow-Origin".into(), "*".into()));
        // Without this a page's script cannot read these of what it
        // fetched (only the CORS-safelisted headers are readable).
        headers.push((
            "Access-Control-Expose-Headers".into(),
            "Content-Length, Content-Range, Accept-Ranges, ETag".into(),
        ));
    }
    if cli.no_cache {
        headers.push(("Cache-Control".into(), "no-store".into()));
    }
    Ok(headers)
}

/// Python's `socket.getfqdn` of the bound address, for `SERVER_NAME`: the
/// host name for a wildcard address, else the address's name if it has one.
fn server_name(ip: IpAddr) -> String {
    let mut buf = [0u8; 256];
    if ip.is_unspecified() {
        // SAFETY: gethostname writes at most buf.len() bytes into buf.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..len]).into_owned();
        }
        return ip.to_string();
    }
    let addr = SocketAddr::new(ip, 0);
    let (storage, len) = sockaddr_of(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes; the host
    // buffer is writable for its whole length.
    let rc = unsafe {
        libc::getnameinfo(
            (&raw const storage).cast(),
            len,
            buf.as_mut_ptr().cast(),
            buf.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return ip.to_string();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sa = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sa = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr.s6_addr = a.ip().octets();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Binds as Python's CLI does: the first address the name resolves to, or
/// with no `-b`, `::` dual-stack, falling back to `0.0.0.0` without IPv6.
fn bind(address: Option<&str>, port: u16) -> Result<std::net::TcpListener, StartError> {
    const BACKLOG: i32 = 1024;
    let addr = match address {
        None => {
            let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match crate::server::sys::listen(any6, BACKLOG) {
                Ok(listener) => return Ok(listener),
                // No IPv6 on this host: IPv4 alone, as Python falls back.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
                    ) =>
                {
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
                }
                Err(e) => return Err(StartError(format!("cannot listen on {any6}: {e}"))),
            }
        }
        Some(host) => {
            // `[::1]` as in a URL: one pair of brackets, no more.
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            (host, port)
                .to_socket_addrs()
                .map_err(|e| StartError(format!("cannot resolve '{host}': {e}")))?
                .next()
                .ok_or_else(|| StartError(format!("'{host}' has no address")))?
        }
    };
    crate::server::sys::listen(addr, BACKLOG)
        .map_err(|e| StartError(format!("cannot listen on {addr}: {e}")))
}

/// Python's banner, which scripts wait for and read the port from.
fn print_banner(addr: SocketAddr) {
    let host = addr.ip().to_string();
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let port = addr.port();
    let mut out = io::stdout();
    let _ = writeln!(
        out,
        "Serving HTTP on {host} port {port} (http://{url_host}:{port}/) ..."
    );
    let _ = out.flush();
}

/// Raises the soft open-file limit to the hard one (scripts get back the
/// one we started with); returns the new limit.
fn raise_open_file_limit() -> usize {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        crate::server::child::set_child_open_file_limit(lim.rlim_cur);
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        usize::try_from(lim.rlim_cur)
            .unwrap_or(usize::MAX)
            .min(1 << 20)
    }
}
