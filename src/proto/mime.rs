//! Content types: `mime_guess`, corrected where Python 3.13's built-in table
//! says otherwise, so the common web types come out as Python sends them.
//!
//! Python also reads `/etc/mime.types` when it exists; we do not, so for
//! extensions missing from both Python's built-in table and this one, the
//! answer is `mime_guess`'s (documented in the README).

/// Python's `SimpleHTTPRequestHandler.extensions_map`: compression suffixes
/// win over the type of what was compressed. Matched case-sensitively first.
const ENCODINGS: &[(&str, &str)] = &[
    ("gz", "application/gzip"),
    ("Z", "application/octet-stream"),
    ("bz2", "application/x-bzip2"),
    ("xz", "application/x-xz"),
];

/// Entries of Python 3.13's `mimetypes` default table where `mime_guess`
/// disagrees or has nothing, plus Python's `suffix_map` aliases.
const OVERRIDES: &[(&str, &str)] = &[
    ("3g2", "audio/3gpp2"),
    ("3gp", "audio/3gpp"),
    ("3gpp", "audio/3gpp"),
    ("3gpp2", "audio/3gpp2"),
    ("aif", "audio/x-aiff"),
    ("aifc", "audio/x-aiff"),
    ("aiff", "audio/x-aiff"),
    ("ass", "audio/aac"),
    ("bat", "text/plain"),
    ("cdf", "application/x-netcdf"),
    ("dll", "application/octet-stream"),
    ("h5", "application/x-hdf5"),
    ("ico", "image/vnd.microsoft.icon"),
    ("ksh", "text/plain"),
    ("loas", "audio/aac"),
    ("m3u", "application/vnd.apple.mpegurl"),
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("mif", "application/x-mif"),
    ("mjs", "text/javascript"),
    ("obj", "application/octet-stream"),
    ("opus", "audio/opus"),
    ("pl", "text/plain"),
    ("py", "text/x-python"),
    ("pyc", "application/x-python-code"),
    ("pyo", "application/x-python-code"),
    ("ram", "application/x-pn-realaudio"),
    ("rdf", "application/xml"),
    ("rst", "text/x-rst"),
    ("rtf", "text/rtf"),
    ("sgm", "text/x-sgml"),
    ("sgml", "text/x-sgml"),
    ("srt", "text/plain"),
    ("wav", "audio/x-wav"),
    ("wsdl", "application/xml"),
    ("xlb", "application/vnd.ms-excel"),
    ("xpdl", "application/xml"),
    ("xsl", "application/xml"),
    ("svgz", "image/svg+xml"),
    ("tgz", "application/x-tar"),
    ("taz", "application/x-tar"),
    ("tz", "application/x-tar"),
    ("tbz2", "application/x-tar"),
    ("txz", "application/x-tar"),
];

/// The `Content-type` Python would send for a file with this name.
pub fn content_type(file_name: &[u8]) -> &'static str {
    let Some(ext) = extension(file_name) else {
        return "application/octet-stream";
    };
    let find = |table: &[(&str, &'static str)], ext: &str| {
        table.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
    };
    if let Some(t) = find(ENCODINGS, ext) {
        return t;
    }
    let mut lower = [0u8; 16];
    let Some(lower) = ascii_lower(ext, &mut lower) else {
        return "application/octet-stream";
    };
    if let Some(t) = find(ENCODINGS, lower).or_else(|| find(OVERRIDES, lower)) {
        return t;
    }
    mime_guess::from_ext(lower)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// The extension as `posixpath.splitext` sees it: after the last dot of the
/// last component, unless that dot only starts the name (`.bashrc`).
fn extension(name: &[u8]) -> Option<&str> {
    let base = match memchr::memrchr(b'/', name) {
        Some(i) => &name[i + 1..],
        None => name,
    };
    let dot = memchr::memrchr(b'.', base)?;
    if base[..dot].iter().all(|&b| b == b'.') {
        return None;
    }
    std::str::from_utf8(&base[dot + 1..]).ok()
}

fn ascii_lower<'a>(ext: &str, buf: &'a mut [u8; 16]) -> Option<&'a str> {
    let bytes = ext.as_bytes();
    let slot = buf.get_mut(..bytes.len())?;
    for (d, s) in slot.iter_mut().zip(bytes) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(slot).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python 3.13's `mimetypes._types_map_default`, the reference.
    const PYTHON_TABLE: &[(&str, &str)] = &[
        ("3g2", "audio/3gpp2"),
        ("3gp", "audio/3gpp"),
        ("3gpp", "audio/3gpp"),
        ("3gpp2", "audio/3gpp2"),
        ("a", "application/octet-stream"),
        ("aac", "audio/aac"),
        ("adts", "audio/aac"),
        ("ai", "application/postscript"),
        ("aif", "audio/x-aiff"),
        ("aifc", "audio/x-aiff"),
        ("aiff", "audio/x-aiff"),
        ("ass", "audio/aac"),
        ("au", "audio/basic"),
        ("avi", "video/x-msvideo"),
        ("avif", "image/avif"),
        ("bat", "text/plain"),
        ("bcpio", "application/x-bcpio"),
        ("bin", "application/octet-stream"),
        ("bmp", "image/bmp"),
        ("c", "text/plain"),
        ("cdf", "application/x-netcdf"),
        ("cpio", "application/x-cpio"),
        ("csh", "application/x-csh"),
        ("css", "text/css"),
        ("csv", "text/csv"),
        ("dll", "application/octet-stream"),
        ("doc", "application/msword"),
        ("dot", "application/msword"),
        ("dvi", "application/x-dvi"),
        ("eml", "message/rfc822"),
        ("eps", "application/postscript"),
        ("etx", "text/x-setext"),
        ("exe", "application/octet-stream"),
        ("gif", "image/gif"),
        ("gtar", "application/x-gtar"),
        ("h", "text/plain"),
        ("h5", "application/x-hdf5"),
        ("hdf", "application/x-hdf"),
        ("heic", "image/heic"),
        ("heif", "image/heif"),
        ("htm", "text/html"),
        ("html", "text/html"),
        ("ico", "image/vnd.microsoft.icon"),
        ("ief", "image/ief"),
        ("jpe", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("jpg", "image/jpeg"),
        ("js", "text/javascript"),
        ("json", "application/json"),
        ("ksh", "text/plain"),
        ("latex", "application/x-latex"),
        ("loas", "audio/aac"),
        ("m1v", "video/mpeg"),
        ("m3u", "application/vnd.apple.mpegurl"),
        ("m3u8", "application/vnd.apple.mpegurl"),
        ("man", "application/x-troff-man"),
        ("markdown", "text/markdown"),
        ("md", "text/markdown"),
        ("me", "application/x-troff-me"),
        ("mht", "message/rfc822"),
        ("mhtml", "message/rfc822"),
        ("mif", "application/x-mif"),
        ("mjs", "text/javascript"),
        ("mov", "video/quicktime"),
        ("movie", "video/x-sgi-movie"),
        ("mp2", "audio/mpeg"),
        ("mp3", "audio/mpeg"),
        ("mp4", "video/mp4"),
        ("mpa", "video/mpeg"),
        ("mpe", "video/mpeg"),
        ("mpeg", "video/mpeg"),
        ("mpg", "video/mpeg"),
        ("ms", "application/x-troff-ms"),
        ("n3", "text/n3"),
        ("nc", "application/x-netcdf"),
        ("nq", "application/n-quads"),
        ("nt", "application/n-triples"),
        ("nws", "message/rfc822"),
        ("o", "application/octet-stream"),
        ("obj", "application/octet-stream"),
        ("oda", "application/oda"),
        ("opus", "audio/opus"),
        ("p12", "application/x-pkcs12"),
        ("p7c", "application/pkcs7-mime"),
        ("pbm", "image/x-portable-bitmap"),
        ("pdf", "application/pdf"),
        ("pfx", "application/x-pkcs12"),
        ("pgm", "image/x-portable-graymap"),
        ("pl", "text/plain"),
        ("png", "image/png"),
        ("pnm", "image/x-portable-anymap"),
        ("pot", "application/vnd.ms-powerpoint"),
        ("ppa", "application/vnd.ms-powerpoint"),
        ("ppm", "image/x-portable-pixmap"),
        ("pps", "application/vnd.ms-powerpoint"),
        ("ppt", "application/vnd.ms-powerpoint"),
        ("ps", "application/postscript"),
        ("pwz", "application/vnd.ms-powerpoint"),
        ("py", "text/x-python"),
        ("pyc", "application/x-python-code"),
        ("pyo", "application/x-python-code"),
        ("qt", "video/quicktime"),
        ("ra", "audio/x-pn-realaudio"),
        ("ram", "application/x-pn-realaudio"),
        ("ras", "image/x-cmu-raster"),
        ("rdf", "application/xml"),
        ("rgb", "image/x-rgb"),
        ("roff", "application/x-troff"),
        ("rst", "text/x-rst"),
        ("rtf", "text/rtf"),
        ("rtx", "text/richtext"),
        ("sgm", "text/x-sgml"),
        ("sgml", "text/x-sgml"),
        ("sh", "application/x-sh"),
        ("shar", "application/x-shar"),
        ("snd", "audio/basic"),
        ("so", "application/octet-stream"),
        ("src", "application/x-wais-source"),
        ("srt", "text/plain"),
        ("sv4cpio", "application/x-sv4cpio"),
        ("sv4crc", "application/x-sv4crc"),
        ("svg", "image/svg+xml"),
        ("swf", "application/x-shockwave-flash"),
        ("t", "application/x-troff"),
        ("tar", "application/x-tar"),
        ("tcl", "application/x-tcl"),
        ("tex", "application/x-tex"),
        ("texi", "application/x-texinfo"),
        ("texinfo", "application/x-texinfo"),
        ("tif", "image/tiff"),
        ("tiff", "image/tiff"),
        ("tr", "application/x-troff"),
        ("trig", "application/trig"),
        ("tsv", "text/tab-separated-values"),
        ("txt", "text/plain"),
        ("ustar", "application/x-ustar"),
        ("vcf", "text/x-vcard"),
        ("vtt", "text/vtt"),
        ("wasm", "application/wasm"),
        ("wav", "audio/x-wav"),
        ("webm", "video/webm"),
        ("webmanifest", "application/manifest+json"),
        ("webp", "image/webp"),
        ("wiz", "application/msword"),
        ("wsdl", "application/xml"),
        ("xbm", "image/x-xbitmap"),
        ("xlb", "application/vnd.ms-excel"),
        ("xls", "application/vnd.ms-excel"),
        ("xml", "text/xml"),
        ("xpdl", "application/xml"),
        ("xpm", "image/x-xpixmap"),
        ("xsl", "application/xml"),
        ("xwd", "image/x-xwindowdump"),
        ("zip", "application/zip"),
    ];

    #[test]
    fn every_python_builtin_type_matches() {
        let mut wrong = Vec::new();
        for (ext, want) in PYTHON_TABLE {
            let got = content_type(format!("f.{ext}").as_bytes());
            if got != *want {
                wrong.push(format!("    (\"{ext}\", \"{want}\"), // mime_guess: {got}"));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    #[test]
    fn python_special_cases() {
        assert_eq!(content_type(b"a.tar.gz"), "application/gzip");
        assert_eq!(content_type(b"a.JS"), "text/javascript");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
        assert_eq!(content_type(b".bashrc"), "application/octet-stream");
        assert_eq!(content_type(b"dir.d/file"), "application/octet-stream");
        assert_eq!(content_type(b"x.unknownext"), "application/octet-stream");
    }
}
