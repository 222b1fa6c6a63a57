//! CGI: a script's output header, and which targets name scripts.
//!
//! `parse_output_head` never panics, its `len` is within the buffer and
//! covers a complete header block, and a prefix of the output never says
//! anything the whole output contradicts. `collapse_path` gives a path with
//! no dot or empty segments, and `split_cgi` only ever names `/cgi-bin` or
//! `/htbin`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::handlers::cgi;
use tinyserve::proto::cgi::{self as script, MAX_OUTPUT_HEAD, OutputParse};

fn check_output_head(buf: &[u8]) -> OutputParse {
    let parsed = script::parse_output_head(buf);
    match &parsed {
        OutputParse::Complete(head) => {
            assert!(head.len >= 1 && head.len <= buf.len());
            let block = &buf[..head.len];
            assert!(
                block == b"\n"
                    || block == b"\r\n"
                    || block.ends_with(b"\n\n")
                    || block.ends_with(b"\n\r\n"),
                "head does not end in a blank line"
            );
            // A final status: never a 1xx sent as the answer.
            assert!((200..=599).contains(&head.status));
            // Nothing passed on can end a header line early or smuggle one.
            let ctl = |b: &u8| (*b < 0x20 && *b != b'\t') || *b == 0x7f;
            for (name, value) in &head.headers {
                assert!(!name.iter().any(ctl) && !value.iter().any(ctl));
            }
            assert!(!head.reason.as_deref().unwrap_or_default().iter().any(ctl));
            if let Some(target) = &head.local_redirect {
                assert!(target.starts_with(b"/") && head.status == 200);
            }
            for (name, _) in &head.headers {
                assert!(!name.is_empty() && name.iter().all(u8::is_ascii_graphic));
                for ours in [
                    &b"Status"[..],
                    b"Content-Length",
                    b"Transfer-Encoding",
                    b"Connection",
                    b"Date",
                    b"Server",
                    b"Upgrade",
                ] {
                    assert!(!name.eq_ignore_ascii_case(ours), "{ours:?} passed on");
                }
            }
            // The head alone parses the same.
            assert_eq!(script::parse_output_head(block), parsed);
        }
        OutputParse::Partial => assert!(buf.len() <= MAX_OUTPUT_HEAD),
        OutputParse::Invalid(_) => {}
    }
    parsed
}

fuzz_target!(|data: &[u8]| {
    let whole = check_output_head(data);
    // The output arrives from a pipe in pieces: what a prefix decides, the
    // whole must decide too (a Partial prefix decides nothing).
    for cut in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let cut = data.len() * cut / 145;
        match check_output_head(&data[..cut]) {
            OutputParse::Partial => {}
            OutputParse::Invalid(why) if why.contains("too long") => {}
            prefix => assert_eq!(prefix, whole, "prefix of {cut} bytes decides otherwise"),
        }
    }

    if let Some(collapsed) = cgi::collapse_path(data) {
        assert!(collapsed.starts_with(b"/"));
        let query = memchr_q(data)
            .map(|i| &data[i + 1..])
            .filter(|q| !q.is_empty());
        let path = match query {
            Some(q) => {
                assert!(collapsed.ends_with(q));
                assert_eq!(collapsed[collapsed.len() - q.len() - 1], b'?');
                &collapsed[..collapsed.len() - q.len() - 1]
            }
            None => &collapsed[..],
        };
        let segments: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
        let (last, init) = segments.split_last().unwrap();
        for seg in init {
            assert!(
                !seg.is_empty() && *seg != b"." && *seg != b"..",
                "{collapsed:?}"
            );
        }
        assert!(*last != b"." && *last != b"..", "{collapsed:?}");
    }
    if let Some((dir, rest)) = cgi::split_cgi(data) {
        assert!(dir == b"/cgi-bin" || dir == b"/htbin", "script dir {dir:?}");
        let collapsed = cgi::collapse_path(data).expect("split without a collapsed path");
        let mut again = dir.clone();
        again.push(b'/');
        again.extend_from_slice(&rest);
        assert_eq!(again, collapsed);
    }
    let _ = cgi::argument(data);
});

fn memchr_q(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'?')
}
