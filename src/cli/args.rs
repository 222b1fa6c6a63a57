//! The command line's arguments, read the way Python's `argparse` reads
//! `python3 -m http.server`'s: short options with their value attached or
//! next (`-b ::1`, `-b::1`), long ones with `=` or next, any unambiguous
//! prefix of a long name (`--dir`), `--` before a positional that starts
//! with `-`. Hand-written: a parser crate cost a sixth of the binary.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The longest timeout accepted: a year. Anything longer is a mistake, and
/// far longer (2^63 seconds) would not fit in a deadline.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 86_400;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub port: u16,
    pub bind: Option<String>,
    pub directory: Option<PathBuf>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub protocol: String,
    pub cgi: bool,
    pub cgi_timeout: u64,
    pub quiet: bool,
    pub headers: Vec<String>,
    pub cors: bool,
    pub no_cache: bool,
    pub contain_symlinks: bool,
    pub rich_listing: bool,
    pub header_timeout: u64,
    pub idle_timeout: u64,
    pub send_timeout: u64,
    pub max_connections: Option<usize>,
}

impl Default for Cli {
    fn default() -> Cli {
        Cli {
            port: 8000,
            bind: None,
            directory: None,
            protocol: "HTTP/1.1".into(),
            cgi: false,
            cgi_timeout: 60,
            quiet: false,
            headers: Vec::new(),
            cors: false,
            no_cache: false,
            contain_symlinks: false,
            rich_listing: false,
            header_timeout: 10,
            idle_timeout: 60,
            send_timeout: 30,
            max_connections: None,
        }
    }
}

/// What reading the arguments came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<Cli>),
    Help,
    Version,
    /// A mistake, said in one line.
    Error(String),
}

pub const HELP: &str = "\
Serve a directory over HTTP: a fast, single-threaded drop-in for `python3 -m http.server`

Usage: tinyserve [OPTIONS] [PORT]

Arguments:
  [PORT]  bind to this port (0 picks a free one) [default: 8000]

Options:
  -b, --bind <ADDRESS>            bind to this address: IPv4, IPv6 or a host name [default: all interfaces, IPv6 and IPv4]
  -d, --directory <DIR>           serve this directory [default: current directory]
  -p, --protocol <VERSION>        conform to this HTTP version; HTTP/1.0 closes every connection, as Python's default does [default: HTTP/1.1] [possible values: HTTP/1.0, HTTP/1.1]
      --cgi                       run as CGI server: scripts in /cgi-bin and /htbin
      --cgi-timeout <SECONDS>     seconds a CGI script may run before it is terminated [default: 60]
  -q, --quiet                     no access log
  -H, --header <'NAME: VALUE'>    add this header to every response, e.g. -H 'X-Frame-Options: DENY' (repeatable); not one the server sets itself (Content-Length, Transfer-Encoding, Connection, Content-Type, Date, Server...)
      --cors                      allow any origin: Access-Control-Allow-Origin: * and answers to preflight OPTIONS
      --no-cache                  send Cache-Control: no-store, so browsers always fetch the latest version
      --contain-symlinks          refuse (404) symlinks whose target lies outside the served directory
      --rich-listing              directory listings with sizes and times, sortable (?sort=name|size|time&order=desc), for phones and dark mode
      --header-timeout <SECONDS>  seconds a client may take to send a request head [default: 10]
      --idle-timeout <SECONDS>    seconds an idle keep-alive connection is kept open [default: 60]
      --send-timeout <SECONDS>    seconds a response may stall because the client does not read [default: 30]
      --max-connections <N>       most connections at once [default: from the open-file limit]
  -h, --help                      Print help
  -V, --version                   Print version
";

/// Every option: its long name, its short letter, whether it takes a value.
const OPTIONS: &[(&str, Option<char>, bool)] = &[
    ("bind", Some('b'), true),
    ("directory", Some('d'), true),
    ("protocol", Some('p'), true),
    ("cgi", None, false),
    ("cgi-timeout", None, true),
    ("quiet", Some('q'), false),
    ("header", Some('H'), true),
    ("cors", None, false),
    ("no-cache", None, false),
    ("contain-symlinks", None, false),
    ("rich-listing", None, false),
    ("header-timeout", None, true),
    ("idle-timeout", None, true),
    ("send-timeout", None, true),
    ("max-connections", None, true),
    ("help", Some('h'), false),
    ("version", Some('V'), false),
];

/// Reads the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Parsed {
    let mut cli = Cli::default();
    let mut port_seen = false;
    let mut args = args.into_iter();
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        // Option names are ASCII; a value (a directory above all) may be
        // any bytes, so it is cut from the raw argument.
        let raw = arg.as_bytes();
        let text = String::from_utf8_lossy(raw);
        let value_at = |at: usize| Some(OsString::from_vec(raw[at..].to_vec()));
        let (name, inline) = if only_positional || text == "-" || !text.starts_with('-') {
            if port_seen {
                return Parsed::Error(format!("unexpected argument '{text}'"));
            }
            port_seen = true;
            match parse_port(&text) {
                Ok(p) => cli.port = p,
                Err(e) => return Parsed::Error(e),
            }
            continue;
        } else if text == "--" {
            only_positional = true;
            continue;
        } else if let Some(long) = text.strip_prefix("--") {
            let (given, inline) = match long.find('=') {
                Some(eq) => (&long[..eq], value_at(2 + eq + 1)),
                None => (long, None),
            };
            match find_long(given) {
                Ok(name) => (name, inline),
                Err(e) => return Parsed::Error(e),
            }
        } else {
            // One or more short options: `-q`, `-qb ::1`, `-b::1`. As
            // `argparse` does, the whole group is read before any of it
            // acts: `-hb` with no value is a mistake, not help.
            let mut found = None;
            let mut flags = Vec::new();
            for (i, c) in text[1..].char_indices() {
                let Some(&(name, _, takes)) = OPTIONS.iter().find(|o| o.1 == Some(c)) else {
                    return Parsed::Error(format!("unexpected argument '-{c}'"));
                };
                let mut rest = 1 + i + c.len_utf8();
                if takes {
                    // `-d=www` is `-d www`, as argparse reads it.
                    if raw.get(rest) == Some(&b'=') {
                        rest += 1;
                    }
                    found = Some((name, (rest < raw.len()).then(|| value_at(rest)).flatten()));
                    break;
                }
                if rest == raw.len() {
                    found = Some((name, None));
                    break;
                }
                flags.push(name);
            }
            let Some((name, inline)) = found else {
                continue;
            };
            if OPTIONS.iter().any(|o| o.0 == name && o.2) && inline.is_none() {
                // The value is the next word: take it before the flags act.
                let value = match next_value(&mut args, name) {
                    Ok(v) => v,
                    Err(e) => return Parsed::Error(e),
                };
                for flag in flags {
                    if let Some(done) = apply_flag(&mut cli, flag) {
                        return done;
                    }
                }
                (name, Some(value))
            } else {
                for flag in flags {
                    if let Some(done) = apply_flag(&mut cli, flag) {
                        return done;
                    }
                }
                (name, inline)
            }
        };
        let takes = OPTIONS.iter().any(|o| o.0 == name && o.2);
        if !takes {
            if inline.is_some() {
                return Parsed::Error(format!("--{name} takes no value"));
            }
            if let Some(done) = apply_flag(&mut cli, name) {
                return done;
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => match next_value(&mut args, name) {
                Ok(v) => v,
                Err(e) => return Parsed::Error(e),
            },
        };
        if let Err(e) = apply_value(&mut cli, name, value) {
            return Parsed::Error(e);
        }
    }
    Parsed::Run(Box::new(cli))
}

/// The word after an option that takes a value. As `argparse` reads it, a
/// word that looks like an option (`-d --cgi`) is not a value: the value
/// is missing. A negative number or a word with a space is a value.
fn next_value(args: &mut impl Iterator<Item = OsString>, name: &str) -> Result<OsString, String> {
    let missing = || format!("--{name} needs a value");
    let value = args.next().ok_or_else(missing)?;
    let raw = value.as_bytes();
    let negative_number = raw.len() > 1
        && raw[1..].iter().all(|&b| b.is_ascii_digit() || b == b'.')
        && raw[1..].iter().filter(|&&b| b == b'.').count() <= 1
        && raw.last() != Some(&b'.');
    let looks_like_option =
        raw.len() > 1 && raw[0] == b'-' && !negative_number && !raw.contains(&b' ');
    if looks_like_option {
        return Err(missing());
    }
    Ok(value)
}

/// A long name or an unambiguous prefix of one, as `argparse` allows.
fn find_long(given: &str) -> Result<&'static str, String> {
    if let Some(o) = OPTIONS.iter().find(|o| o.0 == given) {
        return Ok(o.0);
    }
    let matches: Vec<&str> = OPTIONS
        .iter()
        .map(|o| o.0)
        .filter(|n| !given.is_empty() && n.starts_with(given))
        .collect();
    match matches[..] {
        [one] => Ok(one),
        [] => Err(format!("unexpected argument '--{given}'")),
        _ => Err(format!(
            "ambiguous option '--{given}' could match --{}",
            matches.join(", --")
        )),
    }
}

/// Sets a flag; `Some` for one that ends reading (help, version).
fn apply_flag(cli: &mut Cli, name: &str) -> Option<Parsed> {
    match name {
        "cgi" => cli.cgi = true,
        "quiet" => cli.quiet = true,
        "cors" => cli.cors = true,
        "no-cache" => cli.no_cache = true,
        "contain-symlinks" => cli.contain_symlinks = true,
        "rich-listing" => cli.rich_listing = true,
        "help" => return Some(Parsed::Help),
        "version" => return Some(Parsed::Version),
        _ => return Some(Parsed::Error(format!("--{name} needs a value"))),
    }
    None
}

fn apply_value(cli: &mut Cli, name: &str, value: OsString) -> Result<(), String> {
    if name == "directory" {
        cli.directory = Some(PathBuf::from(value));
        return Ok(());
    }
    let Some(text) = value.to_str() else {
        return Err(format!("the value of --{name} is not UTF-8"));
    };
    let text = text.to_owned();
    match name {
        "bind" => cli.bind = Some(text),
        "protocol" => match text.as_str() {
            "HTTP/1.0" | "HTTP/1.1" => cli.protocol = text,
            _ => {
                return Err(format!(
                    "invalid value '{text}' for '--protocol <VERSION>' (possible values: HTTP/1.0, HTTP/1.1)"
                ));
            }
        },
        "header" => cli.headers.push(text),
        "cgi-timeout" => cli.cgi_timeout = seconds(name, &text)?,
        "header-timeout" => cli.header_timeout = seconds(name, &text)?,
        "idle-timeout" => cli.idle_timeout = seconds(name, &text)?,
        "send-timeout" => cli.send_timeout = seconds(name, &text)?,
        "max-connections" => match text.parse() {
            Ok(n) if n >= 1 => cli.max_connections = Some(n),
            _ => {
                return Err(format!(
                    "invalid value '{text}' for '--max-connections <N>': at least 1"
                ));
            }
        },
        _ => return Err(format!("--{name} takes no value")),
    }
    Ok(())
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| format!("invalid value '{text}' for '[PORT]': a port is 0 to 65535"))
}

fn seconds(name: &str, text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid value '{text}' for '--{name} <SECONDS>': {text} is not in 1..={MAX_TIMEOUT_SECS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Parsed {
        parse(args.iter().map(OsString::from))
    }

    fn cli(args: &[&str]) -> Cli {
        match run(args) {
            Parsed::Run(c) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn pythons_spellings() {
        let want = Cli {
            port: 9000,
            bind: Some("::1".into()),
            directory: Some("/srv".into()),
            protocol: "HTTP/1.0".into(),
            cgi: true,
            quiet: true,
            ..Cli::default()
        };
        for args in [
            &[
                "-b", "::1", "-d", "/srv", "-p", "HTTP/1.0", "--cgi", "-q", "9000",
            ][..],
            &[
                "--bind=::1",
                "--directory",
                "/srv",
                "--protocol=HTTP/1.0",
                "--cgi",
                "--quiet",
                "9000",
            ],
            &[
                "-b::1",
                "-d/srv",
                "-pHTTP/1.0",
                "--cgi",
                "-qb",
                "::1",
                "9000",
            ],
            &[
                "9000", "--dir", "/srv", "--bi", "::1", "--prot", "HTTP/1.0", "--cgi", "--qu",
            ],
            &[
                "-q", "--cgi", "-b", "::1", "-d", "/srv", "-p", "HTTP/1.0", "--", "9000",
            ],
        ] {
            assert_eq!(cli(args), want, "{args:?}");
        }
        assert_eq!(cli(&[]), Cli::default());
        let c = cli(&[
            "-H",
            "X-A: 1",
            "--header=X-B: 2",
            "--max-connections",
            "7",
            "--idle-timeout=5",
        ]);
        assert_eq!(c.headers, ["X-A: 1", "X-B: 2"]);
        assert_eq!((c.max_connections, c.idle_timeout), (Some(7), 5));
    }

    #[test]
    fn mistakes_are_one_line() {
        for args in [
            &["--no-such-flag"][..],
            &["abc"],
            &["70000"],
            &["1", "2"],
            &["-p", "HTTP/2"],
            &["--cgi-timeout", "0"],
            &["--idle-timeout", "99999999999"],
            &["-b"],
            &["--cgi=yes"],
            &["--cg"], // --cgi or --cgi-timeout
            &["--c"],  // --cgi, --cgi-timeout, --cors, --contain-symlinks
            &["-x"],
            // Option-like words are not values; a group is read whole.
            &["-d", "--cgi", "9000"],
            &["-b", "-q"],
            &["-hb"],
            &["-Vx"],
            &["--max-connections", "0"],
        ] {
            match run(args) {
                Parsed::Error(e) => assert!(!e.contains('\n') && !e.is_empty(), "{e}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        // A negative number or a word with a space is a value, as argparse
        // reads it.
        assert_eq!(cli(&["-H", "-X a: b"]).headers, ["-X a: b"]);
        assert_eq!(cli(&["-b", "-1"]).bind.as_deref(), Some("-1"));
        assert_eq!(cli(&["-b=::1"]).bind.as_deref(), Some("::1"));
        assert_eq!(cli(&["-qp=HTTP/1.0"]).protocol, "HTTP/1.0");
        assert_eq!(run(&["--help"]), Parsed::Help);
        assert_eq!(run(&["-h", "--nonsense"]), Parsed::Help);
        assert_eq!(run(&["-V"]), Parsed::Version);
    }

    #[test]
    fn a_directory_may_be_any_bytes() {
        let name = OsString::from_vec(b"/srv/caf\xe9".to_vec());
        for args in [
            vec![OsString::from("-d"), name.clone()],
            vec![OsString::from_vec(b"-d/srv/caf\xe9".to_vec())],
            vec![OsString::from_vec(b"--directory=/srv/caf\xe9".to_vec())],
        ] {
            match parse(args) {
                Parsed::Run(c) => assert_eq!(c.directory.as_deref(), Some(name.as_ref())),
                other => panic!("{other:?}"),
            }
        }
    }
}
