//! Forms a browser posts, read for the handler: what Python's
//! `cgi.FieldStorage` did before Python 3.13 removed it.
//!
//! [`Exchange::read_form`] reads an `application/x-www-form-urlencoded` or
//! `multipart/form-data` body as it arrives and hands the handler a
//! [`Form`]: its fields as text, its uploaded files each kept in memory if
//! small, else in one unnamed temporary file per form (one descriptor,
//! however many files; nothing left on disk whatever happens). Every size
//! has a ceiling ([`FormLimits`]): beyond one the answer is 413 and the
//! connection closes; a malformed body is a 400.
//!
//! ```
//! use tinyserve::{Exchange, FormLimits};
//!
//! fn do_post(r: &mut Exchange) {
//!     r.read_form(FormLimits::default(), |r, form| {
//!         r.send_response(200);
//!         r.end_headers();
//!         for (name, value) in &form.fields {
//!             r.write(format!("{name}={value}\n").as_bytes());
//!         }
//!         for file in &form.files {
//!             r.write(format!("{}: {} bytes\n", file.filename, file.len).as_bytes());
//!         }
//!     });
//! }
//! ```

use crate::handler::{BodyError, BodyHandler, Exchange};
use crate::proto::forms::{self, FormError, Multipart, PartHead, PartSink};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The ceilings a form is read under.
#[derive(Debug, Clone)]
pub struct FormLimits {
    /// All field values together, with every part's name, file name and
    /// type; and the whole of a urlencoded body (held in memory).
    pub max_fields: u64,
    /// All uploaded files together.
    pub max_files: u64,
    /// Parts of a multipart body.
    pub max_parts: usize,
    /// A file at most this large stays in memory ...
    pub memory_threshold: u64,
    /// ... while the files kept in memory come to at most this much.
    pub max_memory: u64,
    /// Where the temporary file goes (`None`: `std::env::temp_dir()`).
    pub temp_dir: Option<PathBuf>,
    /// All forms' temporary files together, in this process, at any one
    /// time: past it an upload is refused with 507 (the disk is not
    /// filled by many uploads at once).
    pub max_temp_total: u64,
    /// Keep urlencoded fields with empty values (Python's
    /// `keep_blank_values`; off by default, as in Python).
    pub keep_blank: bool,
}

impl Default for FormLimits {
    fn default() -> FormLimits {
        FormLimits {
            max_fields: 1 << 20,
            max_files: 1 << 30,
            max_parts: 1000,
            memory_threshold: 64 << 10,
            max_memory: 1 << 20,
            temp_dir: None,
            max_temp_total: 4 << 30,
            keep_blank: false,
        }
    }
}

/// A form, as posted.
#[derive(Debug, Default)]
pub struct Form {
    /// Every field that is not a file, in order, decoded as UTF-8 (invalid
    /// bytes replaced, as Python's `errors="replace"`).
    pub fields: Vec<(String, String)>,
    /// Every uploaded file, in order.
    pub files: Vec<UploadedFile>,
}

impl Form {
    /// The first value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first file uploaded as `name`.
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.field == name)
    }
}

/// One uploaded file.
#[derive(Debug)]
pub struct UploadedFile {
    /// The form field it came in.
    pub field: String,
    /// The name the client gave it, as it gave it: never use it as a path
    /// without checking it.
    pub filename: String,
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub len: u64,
    data: Stored,
}

#[derive(Debug)]
enum Stored {
    Memory(Vec<u8>),
    /// `len` bytes at `offset` of the form's temporary file.
    Temp {
        file: Arc<TempFile>,
        offset: u64,
    },
}

impl UploadedFile {
    /// Its bytes, if it was kept in memory.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            Stored::Memory(v) => Some(v),
            Stored::Temp { .. } => None,
        }
    }

    /// Reads it from the start, wherever it is kept (reading a temporary
    /// file is disk I/O: do it on a worker for large files).
    pub fn reader(&self) -> impl Read + Send + '_ {
        UploadReader { file: self, at: 0 }
    }
}

struct UploadReader<'f> {
    file: &'f UploadedFile,
    at: u64,
}

impl Read for UploadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.file.len - self.at;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match &self.file.data {
            Stored::Memory(v) => {
                let start = self.at as usize;
                buf[..want].copy_from_slice(&v[start..start + want]);
                want
            }
            Stored::Temp { file, offset } => {
                file.file.read_at(&mut buf[..want], offset + self.at)?
            }
        };
        self.at += n as u64;
        Ok(n)
    }
}

impl Exchange<'_> {
    /// Reads the request body as a form, then calls `then` with it. A
    /// multipart body streams: only small values are held in memory, files
    /// go to a temporary file past [`FormLimits::memory_threshold`]. A
    /// body that is neither form type gets 415; one past a limit, 413; a
    /// malformed one, 400.
    pub fn read_form(
        &mut self,
        limits: FormLimits,
        then: impl FnOnce(&mut Exchange, Form) + 'static,
    ) {
        let content_type = self.header("Content-Type").unwrap_or("");
        let kind = if let Some(boundary) = forms::multipart_boundary(content_type) {
            Kind::Multipart(Multipart::new(&boundary))
        } else {
            let (main, _) = forms::parse_header_params(content_type);
            if !(main.is_empty() || main.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
            {
                self.send_error(415, None, None);
                return;
            }
            if self.body_length().is_some_and(|n| n > limits.max_fields) {
                self.send_error(413, Some("Form too large"), None);
                return;
            }
            Kind::Urlencoded(Vec::new())
        };
        self.read_body_with(FormReader {
            kind,
            store: Store::new(limits),
            then: Box::new(then),
        });
    }
}

enum Kind {
    Urlencoded(Vec<u8>),
    Multipart(Multipart),
}

type FormThen = Box<dyn FnOnce(&mut Exchange, Form)>;

struct FormReader {
    kind: Kind,
    store: Store,
    then: FormThen,
}

impl BodyHandler for FormReader {
    fn data(&mut self, piece: &[u8]) -> Result<(), BodyError> {
        let result = match &mut self.kind {
            Kind::Urlencoded(body) => {
                if (body.len() + piece.len()) as u64 > self.store.limits.max_fields {
                    Err(FormError::too_large("Form too large"))
                } else {
                    body.extend_from_slice(piece);
                    Ok(())
                }
            }
            Kind::Multipart(m) => m.feed(piece, &mut self.store),
        };
        result.map_err(|e| BodyError::new(e.status, e.message))
    }

    fn end(self: Box<Self>, r: &mut Exchange) {
        let FormReader { kind, store, then } = *self;
        let mut form = store.form;
        match kind {
            Kind::Urlencoded(body) => {
                form.fields = forms::parse_urlencoded(&body, store.limits.keep_blank);
            }
            Kind::Multipart(m) if !m.is_done() => {
                r.send_error(400, Some("Incomplete multipart body"), None);
                return;
            }
            Kind::Multipart(_) => {}
        }
        then(r, form)
    }
}

/// The part being read.
struct Part {
    head: PartHead,
    len: u64,
    data: PartData,
}

enum PartData {
    Memory(Vec<u8>),
    /// In the temporary file, from this offset.
    Temp(u64),
}

/// Bytes in all forms' temporary files, now.
static TEMP_BYTES: AtomicU64 = AtomicU64::new(0);

/// A form's temporary file, counted in [`TEMP_BYTES`] until it closes.
#[derive(Debug)]
struct TempFile {
    file: File,
    len: AtomicU64,
}

impl TempFile {
    /// Appends `bytes`, if all temporary files stay within `total`.
    fn append(&self, bytes: &[u8], total: u64) -> Result<(), FormError> {
        let n = bytes.len() as u64;
        if TEMP_BYTES.fetch_add(n, Ordering::Relaxed) + n > total {
            TEMP_BYTES.fetch_sub(n, Ordering::Relaxed);
            return Err(FormError {
                status: 507,
                message: "Too many uploads being stored",
            });
        }
        self.len.fetch_add(n, Ordering::Relaxed);
        (&self.file).write_all(bytes).map_err(cannot_store)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        TEMP_BYTES.fetch_sub(*self.len.get_mut(), Ordering::Relaxed);
    }
}

/// Where a multipart body's parts go, under the limits.
struct Store {
    limits: FormLimits,
    form: Form,
    part: Option<Part>,
    fields_bytes: u64,
    files_bytes: u64,
    /// File bytes held in memory.
    memory_bytes: u64,
    parts: usize,
    temp: Option<Arc<TempFile>>,
    temp_len: u64,
}

fn cannot_store(_: io::Error) -> FormError {
    FormError {
        status: 500,
        message: "Cannot store the upload",
    }
}

impl Store {
    fn new(limits: FormLimits) -> Store {
        Store {
            limits,
            form: Form::default(),
            part: None,
            fields_bytes: 0,
            files_bytes: 0,
            memory_bytes: 0,
            parts: 0,
            temp: None,
            temp_len: 0,
        }
    }

    /// Moves the current part's data to the end of the temporary file.
    fn spill(&mut self) -> Result<(), FormError> {
        let file = match &self.temp {
            Some(file) => file.clone(),
            None => {
                let dir = self
                    .limits
                    .temp_dir
                    .clone()
                    .unwrap_or_else(std::env::temp_dir);
                let file = Arc::new(TempFile {
                    file: crate::server::sys::temp_file(&dir).map_err(cannot_store)?,
                    len: AtomicU64::new(0),
                });
                self.temp = Some(file.clone());
                file
            }
        };
        let Some(part) = &mut self.part else {
            return Ok(());
        };
        let start = self.temp_len;
        if let PartData::Memory(held) = std::mem::replace(&mut part.data, PartData::Temp(start)) {
            file.append(&held, self.limits.max_temp_total)?;
            self.memory_bytes -= held.len() as u64;
            self.temp_len += held.len() as u64;
        }
        Ok(())
    }
}

impl PartSink for Store {
    fn part(&mut self, head: PartHead) -> Result<(), FormError> {
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(FormError::too_large("Too many form parts"));
        }
        // Names are kept in memory too: they count as field bytes.
        self.fields_bytes += (head.name.len()
            + head.filename.as_ref().map_or(0, String::len)
            + head.content_type.as_ref().map_or(0, String::len))
            as u64;
        if self.fields_bytes > self.limits.max_fields {
            return Err(FormError::too_large("Form fields too large"));
        }
        self.part = Some(Part {
            head,
            len: 0,
            data: PartData::Memory(Vec::new()),
        });
        Ok(())
    }

    fn data(&mut self, piece: &[u8]) -> Result<(), FormError> {
        let Some(part) = &mut self.part else {
            return Ok(());
        };
        let n = piece.len() as u64;
        part.len += n;
        if part.head.filename.is_none() {
            self.fields_bytes += n;
            if self.fields_bytes > self.limits.max_fields {
                return Err(FormError::too_large("Form fields too large"));
            }
            if let PartData::Memory(v) = &mut part.data {
                v.extend_from_slice(piece);
            }
            return Ok(());
        }
        self.files_bytes += n;
        if self.files_bytes > self.limits.max_files {
            return Err(FormError::too_large("Uploaded files too large"));
        }
        let in_memory = matches!(part.data, PartData::Memory(_));
        if in_memory
            && part.len <= self.limits.memory_threshold
            && self.memory_bytes + n <= self.limits.max_memory
        {
            if let PartData::Memory(v) = &mut part.data {
                v.extend_from_slice(piece);
            }
            self.memory_bytes += n;
            return Ok(());
        }
        if in_memory {
            self.spill()?;
        }
        let file = self
            .temp
            .as_ref()
            .ok_or(FormError::bad("no temporary file"))?;
        file.append(piece, self.limits.max_temp_total)?;
        self.temp_len += n;
        Ok(())
    }

    fn part_end(&mut self) -> Result<(), FormError> {
        let Some(part) = self.part.take() else {
            return Ok(());
        };
        let Part { head, len, data } = part;
        match head.filename {
            None => {
                let PartData::Memory(v) = data else {
                    return Ok(());
                };
                let value = String::from_utf8(v)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.form.fields.push((head.name, value));
            }
            Some(filename) => {
                let data = match data {
                    PartData::Memory(v) => Stored::Memory(v),
                    PartData::Temp(offset) => Stored::Temp {
                        file: self
                            .temp
                            .clone()
                            .ok_or(FormError::bad("no temporary file"))?,
                        offset,
                    },
                };
                self.form.files.push(UploadedFile {
                    field: head.name,
                    filename,
                    content_type: head.content_type,
                    len,
                    data,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limits: FormLimits) -> Store {
        Store::new(limits)
    }

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, filename, data) in parts {
            b.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"");
            b.extend_from_slice(name.as_bytes());
            b.push(b'"');
            if let Some(f) = filename {
                b.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
            }
            b.extend_from_slice(b"\r\n\r\n");
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--B--\r\n");
        b
    }

    fn read_all(f: &UploadedFile) -> Vec<u8> {
        let mut v = Vec::new();
        f.reader().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn small_files_in_memory_large_ones_in_one_temp_file() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let big2: Vec<u8> = big.iter().rev().copied().collect();
        let b = body(&[
            ("a", None, b"x\xffy"),
            ("small", Some("s.txt"), b"tiny"),
            ("big", Some("b.bin"), &big),
            ("big2", Some("c.bin"), &big2),
        ]);
        let mut m = Multipart::new("B");
        let mut s = store(FormLimits::default());
        for piece in b.chunks(4096) {
            m.feed(piece, &mut s).unwrap();
        }
        assert!(m.is_done());
        assert_eq!(s.form.fields, vec![("a".into(), "x\u{fffd}y".into())]);
        let files = &s.form.files;
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].bytes(), Some(&b"tiny"[..]));
        assert!(files[1].bytes().is_none(), "past the threshold: on disk");
        assert_eq!(read_all(&files[1]), big);
        assert_eq!(read_all(&files[2]), big2);
        assert_eq!(files[2].len, big2.len() as u64);
        assert!(s.memory_bytes <= 4);
    }

    #[test]
    fn limits_are_413() {
        let b = body(&[("f", Some("x"), &[7u8; 5000])]);
        let limits = FormLimits {
            max_files: 4000,
            ..FormLimits::default()
        };
        let err = Multipart::new("B")
            .feed(&b, &mut store(limits))
            .unwrap_err();
        assert_eq!(err.status, 413);
        let b = body(&[("v", None, &[b'v'; 5000])]);
        let limits = FormLimits {
            max_fields: 4000,
            ..FormLimits::default()
        };
        let err = Multipart::new("B")
            .feed(&b, &mut store(limits))
            .unwrap_err();
        assert_eq!(err.status, 413);
        let many: Vec<_> = (0..5).map(|_| ("n", None, &b"1"[..])).collect();
        let limits = FormLimits {
            max_parts: 4,
            ..FormLimits::default()
        };
        let err = Multipart::new("B")
            .feed(&body(&many), &mut store(limits))
            .unwrap_err();
        assert_eq!(err.status, 413);
        // Long names count as field bytes.
        let long_name = "n".repeat(300);
        let limits = FormLimits {
            max_fields: 200,
            ..FormLimits::default()
        };
        let err = Multipart::new("B")
            .feed(&body(&[(&long_name, None, b"")]), &mut store(limits))
            .unwrap_err();
        assert_eq!(err.status, 413);
        // No room left for temporary files in the process: 507.
        let limits = FormLimits {
            max_temp_total: 0,
            memory_threshold: 0,
            ..FormLimits::default()
        };
        let err = Multipart::new("B")
            .feed(&body(&[("f", Some("x"), b"data")]), &mut store(limits))
            .unwrap_err();
        assert_eq!(err.status, 507);
    }
}
