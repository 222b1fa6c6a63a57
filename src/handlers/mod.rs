//! What the server answers: static files and directory listings (with the
//! cache of open files that keeps them fast) and CGI scripts.

pub mod cache;
pub mod cgi;
pub mod files;
pub mod listing;
