//! Real-browser test: runs `scripts/browser-test.sh` (headless Chromium
//! shoots the directory listing, seeks an `<audio>` served by tinyserve,
//! and the access log must show a 206) against the binary cargo built for
//! the tests.
//!
//! Needs `chromium` and `python3`. Without them this test FAILS, it never
//! skips: run `bash scripts/test.sh`, which installs them (as root, with
//! apt-get) and then runs `cargo test`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The whole script normally takes a few seconds; each Chromium run in it
/// is killed after 60 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn browser_lists_seeks_and_gets_206() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var("TINYSERVE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tinyserve").to_string());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let out = std::env::temp_dir().join(format!(
        "tinyserve-browser.test.{}.{nanos}",
        std::process::id()
    ));

    // Output goes to files: no pipe to drain while we poll for the exit.
    fs::create_dir_all(&out).unwrap();
    let stdout_path = out.join("script.stdout");
    let stderr_path = out.join("script.stderr");
    let mut child = Command::new("bash")
        .arg(root.join("scripts/browser-test.sh"))
        .arg(&out)
        .env("TINYSERVE_BIN", &bin)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cannot run bash");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            // SIGTERM, so that the script's trap stops tinyserve and Chromium.
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "--- stdout\n{}--- stderr\n{}",
        fs::read_to_string(&stdout_path).unwrap_or_default(),
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    eprintln!("{output}");
    let where_ = format!("(screenshots, logs and DOM kept in {})", out.display());

    let Some(status) = status else {
        panic!("scripts/browser-test.sh ran longer than {SCRIPT_TIMEOUT:?} {where_}\n{output}");
    };
    if status.code() == Some(2) && output.contains("apt-get install -y") {
        panic!(
            "the browser test needs chromium and python3, and one is missing \
             (see below). Run the tests with `bash scripts/test.sh`, which \
             installs them, or `apt-get install -y chromium python3`. \
             Not skipping.\n{output}"
        );
    }
    assert!(
        status.success(),
        "scripts/browser-test.sh failed ({status}) {where_}\n{output}"
    );

    let png = fs::read(out.join("listing.png"))
        .unwrap_or_else(|e| panic!("no listing.png: {e} {where_}"));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "listing.png is not a PNG {where_}"
    );
    assert!(
        png.len() > 5 * 1024,
        "listing.png is only {} bytes: a blank page? {where_}",
        png.len()
    );

    let log = fs::read_to_string(out.join("tinyserve.log")).unwrap();
    assert!(
        log.contains("\"GET /media/tone.wav HTTP/1.1\" 206"),
        "no 206 for /media/tone.wav in the access log {where_}:\n{log}"
    );
    let dom = fs::read_to_string(out.join("player.dom.html")).unwrap();
    assert!(
        dom.contains("SEEKED "),
        "the player did not seek to 7 s {where_}:\n{dom}"
    );

    let _ = fs::remove_dir_all(&out);
}
