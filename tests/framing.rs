//! Request framing, compared with an independent strict parser: Python's
//! `h11` (from PyPI; `scripts/test.sh` installs it into `target/pydeps`).
//! `scripts/framing_diff.py` generates 3000 request streams that vary the
//! header syntax (whitespace around the colon, bare CR and LF, obs-fold,
//! control bytes, duplicate and list-valued Content-Length, Transfer-Encoding
//! variants and case, chunk-size edge cases), each followed by a pipelined
//! request, and sends them to the real binary. For every stream tinyserve
//! must either frame exactly the requests h11 frames, or differ in one of
//! the ways the README argues (`--argued`: refused with 400 and closed where
//! RFC 9112 allows it, or answered where Python answers); never a body
//! answered as a request.
//!
//! Run: `cargo test --test framing -- --nocapture` (prints the table).

mod support;

use std::path::Path;
use std::process::Command;
use support::*;

#[test]
fn framing_agrees_with_h11_or_differs_only_as_argued() {
    let pydeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pydeps");
    let mut check = python().command();
    check
        .env("PYTHONPATH", &pydeps)
        .args(["-c", "import h11; print(h11.__version__)"]);
    let out = check.output().expect("run python");
    assert!(
        out.status.success(),
        "h11 is not installed in {}: run `bash scripts/test.sh` (it installs it), or \
         `python3 -m pip install --target target/pydeps h11`. Not skipping.\n{}",
        pydeps.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "h11 {} with {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        python().version
    );
    let t = TempTree::new("framing");
    t.dir("d");
    let s = Server::tinyserve_with(&t.root, "HTTP/1.1", &["-q"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/framing_diff.py");
    let mut cmd: Command = python().command();
    cmd.env("PYTHONPATH", &pydeps).arg(&script).args([
        "--host",
        "127.0.0.1",
        "--port",
        &s.port.to_string(),
        "--count",
        "3000",
        "--argued",
        "--quiet-stricter",
        "--max-print",
        "20",
    ]);
    let out = cmd.output().expect("run framing_diff.py");
    let text = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = text.lines().rev().take(14).collect();
    for line in tail.iter().rev() {
        eprintln!("{line}");
    }
    assert!(
        out.status.success(),
        "framing differs from h11 in a way the README does not argue:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = text
        .lines()
        .find(|l| l.starts_with("argued: "))
        .expect("a verdict line");
    assert!(verdict.ends_with("unargued: 0, misframed: 0"), "{verdict}");
    let streams = text
        .lines()
        .find(|l| l.starts_with("streams: "))
        .expect("a summary line");
    assert!(streams.starts_with("streams: 3000,"), "{streams}");
}
