//! Proof that a keep-alive request in the steady state allocates nothing:
//! the server runs in a thread of this test process under a counting
//! allocator, and the allocations made on the server's thread are counted
//! while a client sends requests for a small (cached) file and for a large
//! (sendfile) one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tinyserve::respond::{Protocol, Site};
use tinyserve::server::connection::Timeouts;
use tinyserve::server::reactor::{Options, Server};

struct Counting;

thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}
static SERVER_ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_HERE.with(Cell::get) {
            SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT_HERE.with(Cell::get) {
            SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn read_response(s: &mut TcpStream, body_len: usize, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "server closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
            && buf.len() >= i + 4 + body_len
        {
            assert!(
                buf.starts_with(b"HTTP/1.1 200 OK\r\n"),
                "{:?}",
                String::from_utf8_lossy(&buf[..i])
            );
            return;
        }
    }
}

#[test]
fn keep_alive_requests_allocate_nothing_in_the_steady_state() {
    let dir = std::env::temp_dir().join(format!("tinyserve-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("small.txt"), vec![b'x'; 1024]).unwrap();
    std::fs::write(dir.join("large.bin"), vec![b'y'; 200_000]).unwrap();

    let (tx, rx) = mpsc::channel();
    let root = dir.clone();
    std::thread::spawn(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let site = Site {
            root: std::fs::File::open(&root).unwrap(),
            root_path: root.canonicalize().unwrap(),
            protocol: Protocol::Http11,
            cgi: false,
            server_name: "localhost".into(),
            server_port: port,
            extra_headers: Vec::new().into(),
            cors: false,
            contain_symlinks: false,
            rich_listing: false,
        };
        let options = Options {
            timeouts: Timeouts {
                head: Duration::from_secs(10),
                idle: Duration::from_secs(60),
                send: Duration::from_secs(30),
                linger: Duration::from_secs(2),
                cgi: Duration::from_secs(60),
            },
            max_connections: 64,
            quiet: false,
        };
        let mut server = Server::new(listener, site, options).unwrap();
        tx.send(port).unwrap();
        COUNT_HERE.with(|c| c.set(true));
        let _ = server.run();
    });
    let port = rx.recv().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::with_capacity(300_000);
    // The access log stays on (its path is part of the steady state) but
    // goes to /dev/null while the requests run.
    let quiet = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .unwrap();
    // SAFETY: dup/dup2 on descriptors this process owns.
    let saved_stderr = unsafe { libc::dup(2) };
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&quiet), 2) };
    let mut counts = Vec::new();
    let cases = [("/small.txt", 1024), ("/large.bin", 200_000)];
    for (path, len) in cases {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
        let req = req.as_slice();
        // Warm up: the first requests fill the cache and grow the buffers.
        for _ in 0..50 {
            s.write_all(req).unwrap();
            read_response(&mut s, len, &mut buf);
        }
        let before = SERVER_ALLOCS.load(Ordering::Relaxed);
        for _ in 0..1000 {
            s.write_all(req).unwrap();
            read_response(&mut s, len, &mut buf);
        }
        counts.push((path, SERVER_ALLOCS.load(Ordering::Relaxed) - before));
    }
    // SAFETY: restores the descriptor saved above.
    unsafe { libc::dup2(saved_stderr, 2) };
    for (what, during) in counts {
        eprintln!("{during} server allocations over 1000 keep-alive requests for {what}");
        // A new second reformats the cached dates, which allocates a
        // little: allow that, never anything per request.
        assert!(
            during <= 8,
            "{during} allocations on the server thread over 1000 requests for {what}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
