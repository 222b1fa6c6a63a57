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
use tinyserve::{Exchange, FileHandler, ServerBuilder};

struct Counting;

thread_local! {
    /// The counter of the server running on this thread, if any (each test
    /// runs its own server, and tests run at the same time).
    static COUNTER: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

fn counted() {
    if let Some(c) = COUNTER.with(Cell::get) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
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

/// Starts a server with `make()`'s handler in a thread whose allocations
/// are counted; returns its port and its counter.
fn start_counted<H: tinyserve::Handler + 'static>(
    make: impl FnOnce() -> H + Send + 'static,
) -> (u16, &'static AtomicU64) {
    let counter: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut server = ServerBuilder::new()
            .bind("127.0.0.1:0")
            .unwrap()
            .max_connections(64)
            // The access log stays on (its path is part of the steady
            // state); its lines are dropped here.
            .log_to(|_| {})
            .build(make())
            .unwrap();
        tx.send(server.local_addr().unwrap().port()).unwrap();
        COUNTER.with(|c| c.set(Some(counter)));
        let _ = server.serve_forever();
    });
    (rx.recv().unwrap(), counter)
}

/// Allocations on the server's thread over 1000 keep-alive requests for
/// `path` (after 50 to warm up: caches filled, buffers grown).
fn count((port, counter): (u16, &AtomicU64), path: &str, len: usize) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::with_capacity(300_000);
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    for _ in 0..50 {
        s.write_all(&req).unwrap();
        read_response(&mut s, len, &mut buf);
    }
    let before = counter.load(Ordering::Relaxed);
    for _ in 0..1000 {
        s.write_all(&req).unwrap();
        read_response(&mut s, len, &mut buf);
    }
    counter.load(Ordering::Relaxed) - before
}

/// A new second reformats the cached dates, which allocates a little:
/// allow that, never anything per request.
fn assert_none_per_request(during: u64, what: &str) {
    eprintln!("{during} server allocations over 1000 keep-alive requests for {what}");
    assert!(
        during <= 8,
        "{during} allocations on the server thread over 1000 requests for {what}"
    );
}

#[test]
fn keep_alive_requests_allocate_nothing_in_the_steady_state() {
    let dir = std::env::temp_dir().join(format!("tinyserve-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("small.txt"), vec![b'x'; 1024]).unwrap();
    std::fs::write(dir.join("large.bin"), vec![b'y'; 200_000]).unwrap();
    let root = dir.clone();
    let server = start_counted(move || FileHandler::new(root).unwrap());
    for (path, len) in [("/small.txt", 1024), ("/large.bin", 200_000)] {
        assert_none_per_request(count(server, path, len), path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A handler of the library: what it allocates is its own, and this one
/// allocates nothing, so neither does the server around it.
#[test]
fn a_handler_request_allocates_nothing_but_what_the_handler_does() {
    let server = start_counted(|| {
        |r: &mut Exchange| {
            r.send_response(200);
            r.send_header("Content-Type", "text/plain");
            r.end_headers();
            r.write(b"Hello, world!\n");
        }
    });
    assert_none_per_request(count(server, "/", 14), "a handler");
}
