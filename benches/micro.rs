//! Micro-benchmarks of tinyserve's hot-path library functions.
//!
//! Run with `cargo bench --bench micro` (optionally followed by `-- WORD` to
//! run only the benchmarks whose name contains WORD). This uses no benchmark
//! framework: each case is calibrated to run for about `MICRO_MS`
//! milliseconds (default 300) after a short warm-up, and the best of a few
//! such samples is printed as nanoseconds per operation. The whole run takes
//! a few seconds.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tinyserve::handlers::listing;
use tinyserve::proto::request::{self, EMPTY_HEADER, HeadScan, Scan};
use tinyserve::proto::response::Head;
use tinyserve::proto::urlpath;

/// A typical request head a browser sends for a page.
const BROWSER_HEAD: &[u8] = b"GET /docs/guide/index.html?lang=en HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: http://127.0.0.1:8000/docs/\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
If-Modified-Since: Sat, 21 Nov 2026 18:39:29 GMT\r\n\
Priority: u=0, i\r\n\
\r\n";

const DATE: &[u8] = b"Sat, 21 Nov 2026 18:39:29 GMT";

const PLAIN_TARGET: &[u8] = b"/docs/guide/index.html";
const ENCODED_TARGET: &[u8] =
    b"/caf%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E/file%20name%2B1%20%28copy%29.txt?q=a%20b#frag";
const DOTDOT_TARGET: &[u8] = b"/a/b/../../c/./d/../../../../etc/passwd/..//x/./y/../z/%2e%2e/w";

const LISTING_ENTRIES: usize = 1000;

struct Runner {
    filters: Vec<String>,
    sample: Duration,
}

impl Runner {
    fn from_env() -> Runner {
        // `cargo bench` passes `--bench`; other flags are ignored too.
        let filters = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let ms = std::env::var("MICRO_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300u64);
        Runner {
            filters,
            sample: Duration::from_millis(ms.max(1)),
        }
    }

    /// Is the benchmark `name` selected by the command-line filters?
    fn wants(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|w| name.contains(w.as_str()))
    }

    /// Times `f`, printing the best ns/op of three samples.
    fn bench<F: FnMut()>(&self, name: &str, mut f: F) {
        if !self.wants(name) {
            return;
        }
        // Warm up and calibrate: double the count until one batch takes at
        // least a tenth of the sample time.
        let mut iters: u64 = 1;
        loop {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let took = start.elapsed();
            if took >= self.sample / 10 || iters >= 1 << 40 {
                let per = took.as_secs_f64() / iters as f64;
                iters = ((self.sample.as_secs_f64() / 3.0 / per.max(1e-12)) as u64).max(1);
                break;
            }
            iters *= 2;
        }
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let ns = start.elapsed().as_nanos() as f64 / iters as f64;
            best = best.min(ns);
        }
        println!("{name:<44} {best:>12.1} ns/op   ({iters} iters/sample)");
    }
}

/// A temporary directory of `n` small files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn with_files(n: usize) -> std::io::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("tinyserve-micro-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let guard = TempDir(dir);
        for i in 0..n {
            // Mixed case, some spaces and non-ASCII, as real directories have.
            let name = match i % 4 {
                0 => format!("File {i:04}.txt"),
                1 => format!("photo_{i:04}.JPG"),
                2 => format!("résumé-{i:04}.pdf"),
                _ => format!("notes&{i:04}<draft>.md"),
            };
            fs::write(guard.0.join(name), b"x")?;
        }
        for i in 0..10 {
            fs::create_dir(guard.0.join(format!("subdir{i}")))?;
        }
        Ok(guard)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Scans a head that is all in `buf`: `advance` may answer `RequestLine`
/// first (then it is called again) or `Complete` at once.
fn scan_head(buf: &[u8]) -> Option<(usize, usize)> {
    let mut scan = HeadScan::default();
    for _ in 0..2 {
        match scan.advance(buf) {
            Scan::RequestLine(_) => continue,
            Scan::Complete { line_end, head_end } => return Some((line_end, head_end)),
            _ => return None,
        }
    }
    None
}

/// Scans a head that arrives in two reads, split at `at` (after the request
/// line): the first read reports the request line, the second completes.
fn scan_in_two_reads(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut scan = HeadScan::default();
    let mut result = None;
    for part in [&buf[..at], buf] {
        for _ in 0..2 {
            match scan.advance(part) {
                Scan::RequestLine(_) => continue,
                Scan::Complete { line_end, head_end } => result = Some((line_end, head_end)),
                _ => {}
            }
            break;
        }
    }
    result
}

fn main() {
    let r = Runner::from_env();
    println!(
        "tinyserve micro-benchmarks (best of 3 samples of ~{} ms each)",
        r.sample.as_millis()
    );

    // Sanity checks, so a change of behaviour does not go unnoticed as a
    // suspiciously fast benchmark.
    let (line_end, head_end) = scan_head(BROWSER_HEAD).expect("HeadScan did not complete");
    assert_eq!(head_end, BROWSER_HEAD.len());
    let half = BROWSER_HEAD.len() / 2;
    assert_eq!(
        scan_in_two_reads(BROWSER_HEAD, half),
        Some((line_end, head_end))
    );
    let line = &BROWSER_HEAD[..line_end];
    let block = &BROWSER_HEAD[line_end..head_end];
    assert!(matches!(request::parse_request_line(line), Ok(Some(_))));
    {
        let mut headers = [EMPTY_HEADER; request::MAX_HEADER_LINES];
        assert_eq!(request::parse_headers(block, &mut headers), Ok(14));
    }

    r.bench("request::HeadScan::advance (whole head)", || {
        black_box(scan_head(black_box(BROWSER_HEAD)));
    });
    r.bench("request::HeadScan::advance (head in 2 reads)", || {
        black_box(scan_in_two_reads(black_box(BROWSER_HEAD), half));
    });
    r.bench("request::parse_request_line", || {
        let _ = black_box(request::parse_request_line(black_box(line)));
    });
    r.bench("request::parse_headers (14 headers)", || {
        let mut headers = [EMPTY_HEADER; request::MAX_HEADER_LINES];
        let _ = black_box(request::parse_headers(black_box(block), &mut headers));
        black_box(&headers);
    });
    r.bench("request: whole head (scan+line+headers)", || {
        let buf = black_box(BROWSER_HEAD);
        let Some((end, head_end)) = scan_head(buf) else {
            return;
        };
        let _ = black_box(request::parse_request_line(&buf[..end]));
        let mut headers = [EMPTY_HEADER; request::MAX_HEADER_LINES];
        let _ = black_box(request::parse_headers(&buf[end..head_end], &mut headers));
        black_box(&headers);
    });

    let mut out = Vec::with_capacity(4096);
    r.bench("response::Head (200, 3 headers + finish)", || {
        out.clear();
        let mut head = Head::new(&mut out, "HTTP/1.1", 200, false, black_box(DATE));
        head.header("Content-type", b"text/html")
            .header_num("Content-Length", black_box(102_400))
            .header("Last-Modified", black_box(DATE));
        head.finish();
        black_box(&out);
    });

    let mut path = Vec::with_capacity(256);
    for (name, target) in [
        ("urlpath::translate plain", PLAIN_TARGET),
        ("urlpath::translate percent-encoded", ENCODED_TARGET),
        ("urlpath::translate ..-heavy", DOTDOT_TARGET),
    ] {
        r.bench(name, || {
            black_box(urlpath::translate(black_box(target), &mut path));
            black_box(&path);
        });
    }

    if r.wants("listing::render") || r.wants("listing::sort_key") {
        match TempDir::with_files(LISTING_ENTRIES) {
            Ok(dir) => {
                let mut page = Vec::with_capacity(256 * 1024);
                listing::render(dir.path(), b"/big/", &mut page).expect("listing failed");
                let size = page.len();
                r.bench("listing::render (1010 entries)", || {
                    page.clear();
                    listing::render(black_box(dir.path()), b"/big/", &mut page)
                        .expect("listing failed");
                    black_box(&page);
                });
                println!("  (listing page is {size} bytes)");
                r.bench("listing::sort_key (\"résumé-0002.pdf\")", || {
                    black_box(listing::sort_key(black_box("résumé-0002.pdf".as_bytes())));
                });
            }
            Err(e) => println!("listing::render: could not create temp dir: {e}"),
        }
    }
}
