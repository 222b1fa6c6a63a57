//! The protocol core: plain functions and types over bytes and paths. No
//! sockets, no files opened, no clock read; everything here is tested on
//! bytes.

pub mod cgi;
pub mod chunked;
pub mod conditional;
pub mod escape;
pub mod mime;
pub mod range;
pub mod request;
pub mod response;
pub mod status;
pub mod urlpath;
