//! HTTP status codes with the reason phrases and explanations Python 3.13's
//! `http.HTTPStatus` uses, so our status lines and error pages read the same.

/// `(code, phrase, explanation)`, as `http.HTTPStatus` defines them.
const TABLE: &[(u16, &str, &str)] = &[
    (100, "Continue", "Request received, please continue"),
    (200, "OK", "Request fulfilled, document follows"),
    (204, "No Content", "Request fulfilled, nothing follows"),
    (206, "Partial Content", "Partial content follows"),
    (
        301,
        "Moved Permanently",
        "Object moved permanently -- see URI list",
    ),
    (302, "Found", "Object moved temporarily -- see URI list"),
    (
        304,
        "Not Modified",
        "Document has not changed since given time",
    ),
    (
        400,
        "Bad Request",
        "Bad request syntax or unsupported method",
    ),
    (
        403,
        "Forbidden",
        "Request forbidden -- authorization will not help",
    ),
    (404, "Not Found", "Nothing matches the given URI"),
    (
        405,
        "Method Not Allowed",
        "Specified method is invalid for this resource",
    ),
    (408, "Request Timeout", "Request timed out; try again later"),
    (411, "Length Required", "Client must specify Content-Length"),
    (
        412,
        "Precondition Failed",
        "Precondition in headers is false",
    ),
    (413, "Content Too Large", "Content is too large"),
    (414, "URI Too Long", "URI is too long"),
    (416, "Range Not Satisfiable", "Cannot satisfy request range"),
    (
        417,
        "Expectation Failed",
        "Expect condition could not be satisfied",
    ),
    (
        431,
        "Request Header Fields Too Large",
        "The server is unwilling to process the request because its header fields are too large",
    ),
    (500, "Internal Server Error", "Server got itself in trouble"),
    (
        501,
        "Not Implemented",
        "Server does not support this operation",
    ),
    (
        502,
        "Bad Gateway",
        "Invalid responses from another server/proxy",
    ),
    (
        503,
        "Service Unavailable",
        "The server cannot process the request due to a high load",
    ),
    (
        504,
        "Gateway Timeout",
        "The gateway server did not receive a timely response",
    ),
    (505, "HTTP Version Not Supported", "Cannot fulfill request"),
];

fn lookup(code: u16) -> Option<&'static (u16, &'static str, &'static str)> {
    TABLE.iter().find(|entry| entry.0 == code)
}

/// The reason phrase for a status line; Python sends `???` for unknown codes
/// on error pages and an empty phrase on status lines, we send the latter.
pub fn phrase(code: u16) -> &'static str {
    lookup(code).map_or("", |e| e.1)
}

/// The long explanation Python puts on its error page.
pub fn explanation(code: u16) -> &'static str {
    lookup(code).map_or("???", |e| e.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(phrase(404), "Not Found");
        assert_eq!(phrase(414), "URI Too Long");
        assert_eq!(explanation(501), "Server does not support this operation");
        assert_eq!(phrase(299), "");
        assert_eq!(explanation(299), "???");
    }
}
