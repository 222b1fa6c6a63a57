//! CGI as Python's `CGIHTTPRequestHandler` has it: which requests name
//! scripts, which file runs, with what environment. The server runs the
//! script and reads its output (`proto::cgi` parses its header).
//!
//! ```no_run
//! use tinyserve::{CgiHandler, FileHandler, Server};
//!
//! let files = FileHandler::new("/srv/www")?;
//! let cgi = CgiHandler::new(files, "localhost", 8000);
//! Server::bind("127.0.0.1:8000", cgi)?.serve_forever()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::handler::{CgiCommand, Exchange, Handler};
use crate::handlers::files::FileHandler;
use crate::proto::escape::py_repr_latin1;
use crate::proto::request;
use crate::proto::urlpath;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Python's `cgi_directories`.
const CGI_DIRS: [&[u8]; 2] = [b"/cgi-bin", b"/htbin"];

/// Python's `_url_collapse_path`: the target's path percent-decoded, with
/// empty and `.` segments dropped and `..` applied, the query put back.
/// `None` where Python raises `IndexError` (more `..` than segments).
pub fn collapse_path(target: &[u8]) -> Option<Vec<u8>> {
    let (path, query) = match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    let path = urlpath::display_path(path);
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let (last, init) = parts.split_last()?;
    let mut head: Vec<&[u8]> = Vec::new();
    for part in init {
        match *part {
            b".." => {
                head.pop()?;
            }
            b"" | b"." => {}
            p => head.push(p),
        }
    }
    let mut tail: &[u8] = last;
    if tail == b".." {
        head.pop()?;
        tail = b"";
    } else if tail == b"." {
        tail = b"";
    }
    let mut out = Vec::with_capacity(target.len() + 1);
    for part in &head {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out.push(b'/');
    out.extend_from_slice(tail);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push(b'?');
        out.extend_from_slice(q);
    }
    Some(out)
}

/// Python's `is_cgi`: the collapsed path split after its CGI directory
/// (`/cgi-bin`, `rest`), or `None` when the request is not for a script.
pub fn split_cgi(target: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let collapsed = collapse_path(target)?;
    let mut from = 1;
    while let Some(i) =
        memchr::memchr(b'/', &collapsed[from.min(collapsed.len())..]).map(|i| i + from)
    {
        if CGI_DIRS.contains(&&collapsed[..i]) {
            return Some((collapsed[..i].to_vec(), collapsed[i + 1..].to_vec()));
        }
        from = i + 1;
    }
    None
}

/// A script ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// `SCRIPT_NAME`: the URL path of the script.
    pub name: Vec<u8>,
    pub file: PathBuf,
    /// `PATH_INFO` before Python's second percent-decoding.
    pub rest: Vec<u8>,
    pub query: Vec<u8>,
}

/// Why no script runs, with Python's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, what: &str, name: &[u8]) -> Refusal {
    Refusal {
        status,
        message: format!("{what} ({})", py_repr_latin1(name)),
    }
}

/// The file under `root` that an already-decoded URL path names: Python's
/// `translate_path` without its percent-decoding, which `collapse_path` has
/// done once already. Decoding a second time is how `%252e%252e` would
/// become `..` after the collapse had checked for it.
fn translate(root: &Path, url: &[u8]) -> (PathBuf, bool) {
    let mut rel = Vec::new();
    let t = urlpath::translate_decoded(url, &mut rel);
    (root.join(OsStr::from_bytes(&rel)), t.trailing_slash)
}

/// Python's `run_cgi` search: walk down directories as long as they exist,
/// the next segment is the script, the rest is `PATH_INFO`. `dir` and
/// `rest` come from [`split_cgi`], decoded once; nothing is decoded again.
/// One `stat` per directory that exists on the way (and one more), each
/// built by appending one segment: linear in the target's length.
///
/// A script runs only if the file found, symlinks resolved, lies inside
/// one of the root's CGI directories (themselves resolved).
pub fn find_script(root: &Path, dir: &[u8], rest: &[u8]) -> Result<Script, Refusal> {
    let mut path = dir.to_vec();
    path.push(b'/');
    path.extend_from_slice(rest);
    let (mut dir_len, mut rest_start) = (dir.len(), dir.len() + 1);
    // The directory the walk has reached, as a file system path; the query
    // is not part of it (as `translate_path` drops it).
    let path_part_end = memchr::memchr2(b'?', b'#', &path).unwrap_or(path.len());
    if path[..path_part_end].contains(&0) {
        // No file has a NUL in its name.
        return Err(refuse(404, "No such CGI script", &path[..path_part_end]));
    }
    let mut probe = translate(root, dir).0;
    let mut search = dir_len + 1;
    while let Some(i) = memchr::memchr(b'/', path.get(search..).unwrap_or(b"")).map(|i| i + search)
    {
        let segment = &path[search.min(path_part_end)..i.min(path_part_end)];
        if !segment.is_empty() {
            probe.push(OsStr::from_bytes(segment));
        }
        if probe.is_dir() {
            (dir_len, rest_start) = (i, i + 1);
            search = i + 1;
        } else {
            break;
        }
    }
    let dir = &path[..dir_len];
    let rest = &path[rest_start.min(path.len())..];
    let (rest, query) = match memchr::memchr(b'?', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let (script, rest) = match memchr::memchr(b'/', rest) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    let mut name = dir.to_vec();
    name.push(b'/');
    name.extend_from_slice(script);
    let (file, trailing_slash) = translate(root, &name);
    let Ok(meta) = std::fs::metadata(&file) else {
        return Err(refuse(404, "No such CGI script", &name));
    };
    if !meta.is_file() || trailing_slash {
        return Err(refuse(403, "CGI script is not a plain file", &name));
    }
    if !inside_a_cgi_directory(root, &file) {
        // A symlink out of the CGI directory: nothing outside it runs.
        return Err(refuse(404, "No such CGI script", &name));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(refuse(403, "CGI script is not executable", &name));
    }
    Ok(Script {
        name,
        file,
        rest: rest.to_vec(),
        query: query.to_vec(),
    })
}

/// Whether `file`, resolved, lies inside `root/cgi-bin` or `root/htbin`
/// (each resolved too, so a CGI directory may itself be a link).
fn inside_a_cgi_directory(root: &Path, file: &Path) -> bool {
    let Ok(real) = file.canonicalize() else {
        return false;
    };
    CGI_DIRS.iter().any(|d| {
        root.join(OsStr::from_bytes(&d[1..]))
            .canonicalize()
            .is_ok_and(|cgi_dir| real.starts_with(&cgi_dir) && real != cgi_dir)
    })
}

/// What the environment is made from besides the request's headers.
pub struct EnvContext<'a> {
    pub root: &'a Path,
    pub server_software: &'a str,
    pub server_name: &'a str,
    pub server_port: u16,
    pub protocol: &'a str,
    pub method: &'a [u8],
    pub remote_addr: &'a str,
}

/// The CGI variables, Python's set plus every other header as `HTTP_*`
/// (RFC 3875 section 4.1.18). The server's own environment is inherited
/// by the child on top of these, as in Python.
pub fn environment(
    ctx: &EnvContext,
    script: &Script,
    headers: &[httparse::Header],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &str, v: &[u8]| {
        env.retain(|(name, _)| name != k);
        env.push((OsString::from(k), OsString::from_vec(v.to_vec())));
    };
    set("SERVER_SOFTWARE", ctx.server_software.as_bytes());
    set("SERVER_NAME", ctx.server_name.as_bytes());
    set("GATEWAY_INTERFACE", b"CGI/1.1");
    set("SERVER_PROTOCOL", ctx.protocol.as_bytes());
    set("SERVER_PORT", ctx.server_port.to_string().as_bytes());
    set("REQUEST_METHOD", ctx.method);
    // Decoded once, by `collapse_path` (Python decodes it a second time).
    let path_info = &script.rest;
    set("PATH_INFO", path_info);
    let mut rel = Vec::new();
    let t = urlpath::translate_decoded(path_info, &mut rel);
    let mut translated = ctx.root.as_os_str().as_bytes().to_vec();
    if !rel.is_empty() {
        translated.push(b'/');
        translated.extend_from_slice(&rel);
    }
    if t.trailing_slash {
        translated.push(b'/');
    }
    set("PATH_TRANSLATED", &translated);
    set("SCRIPT_NAME", &script.name);
    set("QUERY_STRING", &script.query);
    set("REMOTE_ADDR", ctx.remote_addr.as_bytes());
    set("REMOTE_HOST", b"");
    if let Some((auth_type, user)) = request::header(headers, "Authorization").and_then(basic_user)
    {
        set("AUTH_TYPE", auth_type);
        if let Some(user) = user {
            set("REMOTE_USER", &user);
        }
    }
    set(
        "CONTENT_TYPE",
        request::header(headers, "Content-Type").unwrap_or(b"text/plain"),
    );
    set(
        "CONTENT_LENGTH",
        request::header(headers, "Content-Length").unwrap_or(b""),
    );
    set(
        "HTTP_REFERER",
        request::header(headers, "Referer").unwrap_or(b""),
    );
    set("HTTP_ACCEPT", &join_all(headers, "Accept", b",", false));
    set(
        "HTTP_USER_AGENT",
        request::header(headers, "User-Agent").unwrap_or(b""),
    );
    set("HTTP_COOKIE", &join_all(headers, "Cookie", b", ", true));
    for h in headers {
        let Some(var) = http_var_name(h.name) else {
            continue;
        };
        if env.iter().any(|(k, _)| *k == *var) {
            continue;
        }
        let value = join_all(headers, h.name, b", ", false);
        env.push((OsString::from(var), OsString::from_vec(value)));
    }
    env
}

/// `HTTP_NAME` for a header that is not already a CGI variable. Never
/// `HTTP_PROXY` (httpoxy) and never the credentials. A name with `_` in it
/// is dropped, as Apache 2.4 and nginx drop it: `X_Forwarded_For` would
/// otherwise pass for `X-Forwarded-For`, and `Content_Type` would pass
/// for the real `CONTENT_TYPE` in scripts that read either.
fn http_var_name(name: &str) -> Option<String> {
    let skip = ["content-type", "content-length", "authorization", "proxy"];
    if skip.iter().any(|s| name.eq_ignore_ascii_case(s))
        || name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    Some(format!(
        "HTTP_{}",
        name.to_ascii_uppercase().replace('-', "_")
    ))
}

/// All values of a header joined, as Python joins `Accept` (empty values
/// kept) and `Cookie` (empty values skipped).
fn join_all(headers: &[httparse::Header], name: &str, sep: &[u8], skip_empty: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        if skip_empty && h.value.is_empty() {
            continue;
        }
        if !first {
            out.extend_from_slice(sep);
        }
        first = false;
        out.extend_from_slice(h.value);
    }
    out
}

/// Python's reading of `Authorization`: two words give `AUTH_TYPE`; for
/// Basic, a decodable `user:password` gives `REMOTE_USER`.
fn basic_user(value: &[u8]) -> Option<(&[u8], Option<Vec<u8>>)> {
    let mut words = value
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let (kind, creds) = (words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    if !kind.eq_ignore_ascii_case(b"basic") {
        return Some((kind, None));
    }
    let user = base64_decode(creds).filter(|d| d.is_ascii()).and_then(|d| {
        let parts: Vec<&[u8]> = d.split(|&b| b == b':').collect();
        (parts.len() == 2).then(|| parts[0].to_vec())
    });
    Some((kind, user))
}

/// Standard base64 as Python's `base64.decodebytes` reads it: characters
/// outside the alphabet are skipped, and the rest, padding included, must
/// come in whole groups of four ("Incorrect padding" otherwise).
fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let is_b64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
    if input.iter().filter(|c| is_b64(c)).count() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits >= 6 {
        return None; // a lone trailing character is an error in Python too
    }
    Some(out)
}

/// Python's `CGIHTTPRequestHandler`: GET, HEAD and POST to a path under
/// `/cgi-bin` or `/htbin` run that script (its output is the answer);
/// everything else goes to the file handler inside, whose methods it
/// keeps (POST elsewhere is Python's 501 "Can only POST to CGI scripts").
pub struct CgiHandler {
    files: FileHandler,
    server_name: String,
    server_port: u16,
}

impl CgiHandler {
    /// Scripts under `files`' directory, with `SERVER_NAME` and
    /// `SERVER_PORT` as given.
    pub fn new(files: FileHandler, server_name: &str, server_port: u16) -> CgiHandler {
        CgiHandler {
            files,
            server_name: server_name.to_owned(),
            server_port,
        }
    }

    /// Python's `run_cgi` up to the fork: find the script, refuse as Python
    /// does, and build its environment; the server runs it.
    fn run(&self, r: &mut Exchange, dir: &[u8], rest: &[u8]) {
        let root = self.files.root();
        let script = match find_script(root, dir, rest) {
            Ok(script) => script,
            Err(refusal) => return r.send_error(refusal.status, Some(&refusal.message), None),
        };
        if r.body_length().is_none() {
            // A script needs CONTENT_LENGTH; we do not buffer chunked uploads.
            return r.send_error(411, None, None);
        }
        let remote = r.client_address().ip().to_string();
        let env_ctx = EnvContext {
            root,
            server_software: r.version_string(),
            server_name: &self.server_name,
            server_port: self.server_port,
            protocol: r.protocol_version(),
            method: r.command_bytes(),
            remote_addr: &remote,
        };
        let env = environment(&env_ctx, &script, r.req().headers);
        let argument = argument(&script.query);
        let has_nul = |v: &OsStr| v.as_bytes().contains(&0);
        if env.iter().any(|(_, v)| has_nul(v)) || argument.as_deref().is_some_and(has_nul) {
            // No process can be given a NUL byte; the request is at fault.
            return r.send_error(400, Some("NUL byte in a CGI variable"), None);
        }
        r.run_cgi(CgiCommand {
            python: is_python(&script.file),
            program: script.file,
            argument,
            env,
            // Only a POST body is the script's input, as in Python.
            with_body: r.command_bytes() == b"POST",
        });
    }
}

impl Handler for CgiHandler {
    fn handle(&self, r: &mut Exchange) {
        let method = r.command_bytes();
        if matches!(method, b"GET" | b"HEAD" | b"POST")
            && let Some((dir, rest)) = split_cgi(r.req().line.target)
        {
            return self.run(r, &dir, &rest);
        }
        if method == b"POST" {
            return r.send_error(501, Some("Can only POST to CGI scripts"), None);
        }
        self.files.handle(r);
    }
}

/// Python passes the query as the script's argument when it has no `=`.
pub fn argument(query: &[u8]) -> Option<OsString> {
    (!query.contains(&b'=')).then(|| {
        let decoded: Vec<u8> = query
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        OsString::from_vec(decoded)
    })
}

/// Python runs `.py` and `.pyw` scripts with its own interpreter.
pub fn is_python(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("py") || e.eq_ignore_ascii_case("pyw"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collapse(s: &str) -> Option<String> {
        collapse_path(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    /// The cases of Python's own `test_url_collapse_path`.
    #[test]
    fn collapse_like_python() {
        let cases = [
            ("", "/"),
            ("..", "IndexError"),
            ("/.//..", "IndexError"),
            ("/", "/"),
            ("//", "/"),
            ("/\\", "/\\"),
            ("/.//", "/"),
            ("cgi-bin/file1.py", "/cgi-bin/file1.py"),
            ("/cgi-bin/file1.py", "/cgi-bin/file1.py"),
            ("a", "/a"),
            ("/a", "/a"),
            ("//a", "/a"),
            ("./a", "/a"),
            ("./C:/", "/C:/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/c/..", "/a/b/"),
            ("/a/b/c/../d", "/a/b/d"),
            ("/a/b/c/../d/e/../f", "/a/b/d/f"),
            ("/a/b/c/../d/e/../../f", "/a/b/f"),
            ("/a/b/c/../d/e/.././././..//f", "/a/b/f"),
            ("../a/b/c/../d/e/.././././..//f", "IndexError"),
            ("/a/b/c/../d/e/../../../f", "/a/f"),
            ("/a/b/c/../d/e/../../../../f", "/f"),
            ("/a/b/c/../d/e/../../../../../f", "IndexError"),
            ("/a/b/c/../d/e/../../../../f/..", "/"),
            ("/a/b/c/../d/e/../../../../f/../.", "/"),
        ];
        for (input, want) in cases {
            let got = collapse(input).unwrap_or_else(|| "IndexError".into());
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn is_cgi_like_python() {
        let split = |s: &str| {
            split_cgi(s.as_bytes())
                .map(|(a, b)| (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap()))
        };
        assert_eq!(
            split("/cgi-bin/test.py"),
            Some(("/cgi-bin".into(), "test.py".into()))
        );
        assert_eq!(
            split("/htbin/a/b?x?y"),
            Some(("/htbin".into(), "a/b?x?y".into()))
        );
        assert_eq!(
            split("/cgi-bin/../cgi-bin/x.sh"),
            Some(("/cgi-bin".into(), "x.sh".into()))
        );
        assert_eq!(
            split("//cgi-bin///x.sh"),
            Some(("/cgi-bin".into(), "x.sh".into()))
        );
        assert_eq!(
            split("/cgi%2Dbin/x.sh"),
            Some(("/cgi-bin".into(), "x.sh".into()))
        );
        assert_eq!(split("/cgi-bin"), None);
        assert_eq!(split("/a/cgi-bin/x"), None);
        assert_eq!(split("/cgi-binx/y"), None);
        assert_eq!(split("/../cgi-bin/x"), None);
    }

    #[test]
    fn environment_like_python_plus_headers() {
        let root = Path::new("/srv");
        let script = Script {
            name: b"/cgi-bin/x.sh".to_vec(),
            file: PathBuf::from("/srv/cgi-bin/x.sh"),
            rest: b"/a%20b/".to_vec(),
            query: b"q=1".to_vec(),
        };
        let ctx = EnvContext {
            root,
            server_software: "tinyserve/0",
            server_name: "localhost",
            server_port: 8000,
            protocol: "HTTP/1.0",
            method: b"POST",
            remote_addr: "127.0.0.1",
        };
        let h = |name, value| httparse::Header { name, value };
        let headers = [
            h("Authorization", &b"Basic dXNlcjpwYXNz"[..]),
            h("Accept", b"text/html"),
            h("Accept", b"text/plain"),
            h("Host", b"example"),
            h("Proxy", b"evil"),
            h("X-Custom-Thing", b"1"),
            h("X_Forwarded_For", b"6.6.6.6"),
            h("X-Forwarded-For", b"10.0.0.1"),
            h("Content_Type", b"evil"),
        ];
        let env = environment(&ctx, &script, &headers);
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        // `rest` was decoded once (from `/a%2520b/`): it is not decoded again.
        assert_eq!(get("PATH_INFO").as_deref(), Some("/a%20b/"));
        assert_eq!(get("PATH_TRANSLATED").as_deref(), Some("/srv/a%20b/"));
        assert_eq!(get("AUTH_TYPE").as_deref(), Some("Basic"));
        assert_eq!(get("REMOTE_USER").as_deref(), Some("user"));
        assert_eq!(get("HTTP_ACCEPT").as_deref(), Some("text/html,text/plain"));
        assert_eq!(get("CONTENT_TYPE").as_deref(), Some("text/plain"));
        assert_eq!(get("CONTENT_LENGTH").as_deref(), Some(""));
        assert_eq!(get("HTTP_HOST").as_deref(), Some("example"));
        assert_eq!(get("HTTP_X_CUSTOM_THING").as_deref(), Some("1"));
        assert_eq!(get("HTTP_PROXY"), None);
        assert_eq!(get("HTTP_X_FORWARDED_FOR").as_deref(), Some("10.0.0.1"));
        assert_eq!(get("HTTP_CONTENT_TYPE"), None);
        assert_eq!(get("HTTP_AUTHORIZATION"), None);
        assert_eq!(get("QUERY_STRING").as_deref(), Some("q=1"));
    }

    #[test]
    fn argument_and_base64() {
        assert_eq!(argument(b"a+b"), Some(OsString::from("a b")));
        assert_eq!(argument(b"a=b"), None);
        assert_eq!(
            base64_decode(b"dXNlcjpwYXNz").as_deref(),
            Some(&b"user:pass"[..])
        );
    }
}
