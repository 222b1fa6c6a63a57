//! The protocol core: plain functions and types over bytes and paths. No
//! sockets, no files opened, no clock read; everything here is tested on
//! bytes.

pub mod cgi;
pub mod chunked;
pub mod conditional;
pub mod escape;
pub mod forms;
pub mod mime;
pub mod range;
pub mod request;
pub mod response;
pub mod status;
pub mod urlpath;

/// The value of one hex digit, either case.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
