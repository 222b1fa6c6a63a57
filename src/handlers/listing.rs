//! Directory listings in the HTML Python 3.13's `list_directory` writes,
//! built in bounded steps and sent as the socket drains.
//!
//! A listing is read from the directory's open descriptor ([`Build`], a
//! few hundred entries per step, so a 100,000-entry directory never stalls
//! the loop), sorted once as Python sorts it, and then shared: every
//! connection listing that directory holds the same [`Listing`] and a
//! cursor into it ([`Page`]), so a slow reader costs a cursor, not a page.
//! The page's length is known before its first byte is sent, so it goes
//! out with `Content-Length`, as Python's does.
//!
//! Ceilings: a listing holds at most [`MAX_ENTRIES`] entries (about 20 MiB
//! while it is built); the listings cached or in use share
//! [`LISTINGS_BUDGET`] bytes.

use crate::proto::escape::push_html;
use crate::proto::urlpath::{display_path, push_quoted};
use crate::server::sys::{self, DirReader, EntryType};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The most entries one listing holds; a larger directory gets 500.
pub const MAX_ENTRIES: usize = 250_000;
/// Bytes all cached and in-use listings may hold together; a new listing
/// beyond it gets 503 until others are done.
pub const LISTINGS_BUDGET: usize = 32 << 20;
/// Entries read (and, where needed, `stat`ed) per step of a build.
const STEP_ENTRIES: usize = 256;
/// A finished listing is reused for this long (while its directory's times
/// are unchanged), then read afresh: Python reads it for every request.
const REUSE_FOR: Duration = Duration::from_secs(1);
/// While connections are still sending a listing, it is reused for this
/// long: readers that come and go cannot make a new copy every second.
const REUSE_WHILE_SENT: Duration = Duration::from_secs(10);
/// Most listings kept at once.
const MAX_CACHED: usize = 64;

/// One entry, as the listing shows it: 8 bytes, so a 100,000-entry
/// listing is its names plus 800 KB.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Where its name is in `Listing::names`.
    name_at: u32,
    name_len: u16,
    is_dir: bool,
    is_link: bool,
}

/// What a rich listing shows of an entry besides its name.
#[derive(Debug, Clone, Copy)]
struct Meta {
    size: u64,
    mtime: i64,
    /// Size and time are shown (not for a link that `--contain-symlinks`
    /// refuses, whose target is not ours to describe).
    shown: bool,
}

/// What a listing is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// `--rich-listing`: sizes and times are read too.
    pub rich: bool,
    /// `--contain-symlinks`: the served root, symlinks resolved; a link
    /// whose target lies outside it shows no size or time.
    pub contain: Option<PathBuf>,
}

/// A directory's entries in Python's order, with what a page needs.
pub struct Listing {
    names: Vec<u8>,
    entries: Vec<Entry>,
    /// For rich listings, one per entry; empty otherwise.
    meta: Vec<Meta>,
    style: Style,
    /// The items' bytes, all together (they do not depend on the order).
    items_len: u64,
    /// A rich listing's directories, which come first in `entries`.
    dirs: usize,
    /// Rich listings sorted by size or time: indices into `entries`,
    /// directories first, made when first asked for.
    by_size: OnceCell<Box<[u32]>>,
    by_time: OnceCell<Box<[u32]>>,
    /// The bytes all finished listings hold, shared by every listing of
    /// the server; this one's share is given back when it is dropped.
    alive: Rc<std::cell::Cell<usize>>,
    counted: usize,
}

impl Drop for Listing {
    fn drop(&mut self) {
        self.alive
            .set(self.alive.get().saturating_sub(self.counted));
    }
}

/// Why a listing could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Python's 404 "No permission to list directory".
    Unreadable,
    /// More than [`MAX_ENTRIES`].
    TooLarge,
    /// All listings, finished and being read, would hold more than
    /// [`LISTINGS_BUDGET`]: 503, try again.
    OverBudget,
}

/// A listing being read, a step at a time.
pub struct Build {
    state: BuildState,
    /// When it was started (for reuse) and last stepped (one step per
    /// turn of the loop, however many connections wait for it).
    started: Instant,
    last_step: Option<Instant>,
}

enum BuildState {
    Reading(Box<Reading>),
    Ready(Rc<Listing>),
    Failed(Failure),
}

struct Reading {
    reader: DirReader,
    style: Style,
    names: Vec<u8>,
    entries: Vec<Entry>,
    meta: Vec<Meta>,
    /// This build's bytes, counted with every listing's as it grows.
    share: Share,
    /// The sort keys, lower-cased, in one buffer, and where each is.
    keys: Vec<u8>,
    key_spans: Vec<(u32, u32)>,
    scratch: Vec<u8>,
}

/// The state of a build after a step.
pub enum Progress<'a> {
    Ready(&'a Rc<Listing>),
    Working,
    Failed(Failure),
}

impl Build {
    pub fn new(dir: File, style: Style, now: Instant) -> Build {
        Build::counted(dir, style, now, Rc::default())
    }

    fn counted(dir: File, style: Style, now: Instant, alive: Rc<std::cell::Cell<usize>>) -> Build {
        Build {
            state: BuildState::Reading(Box::new(Reading {
                reader: DirReader::new(dir),
                style,
                names: Vec::new(),
                entries: Vec::new(),
                meta: Vec::new(),
                share: Share { alive, counted: 0 },
                keys: Vec::new(),
                key_spans: Vec::new(),
                scratch: Vec::new(),
            })),
            started: now,
            last_step: None,
        }
    }

    /// Reads the next `STEP_ENTRIES` entries (at most once per `now`, the
    /// time of this turn of the loop), sorting them all after the last.
    pub fn step(&mut self, now: Instant) -> Progress<'_> {
        if matches!(self.state, BuildState::Reading(_)) && self.last_step != Some(now) {
            self.last_step = Some(now);
            let BuildState::Reading(reading) = &mut self.state else {
                unreachable!()
            };
            let read = reading.read_some().and_then(|done| {
                // Builds started together must not add up past the budget:
                // each counts what it holds as it grows.
                let bytes = reading.bytes();
                reading.share.set(bytes);
                if !done && reading.share.alive.get() > LISTINGS_BUDGET {
                    return Err(Failure::OverBudget);
                }
                Ok(done)
            });
            match read {
                Ok(false) => {}
                Ok(true) => {
                    let BuildState::Reading(reading) =
                        std::mem::replace(&mut self.state, BuildState::Failed(Failure::Unreadable))
                    else {
                        unreachable!()
                    };
                    self.state = BuildState::Ready(Rc::new(reading.finish()));
                }
                Err(failure) => self.state = BuildState::Failed(failure),
            }
        }
        match &self.state {
            BuildState::Ready(listing) => Progress::Ready(listing),
            BuildState::Reading(_) => Progress::Working,
            BuildState::Failed(f) => Progress::Failed(*f),
        }
    }

    /// Bytes held, for the budget.
    pub fn bytes(&self) -> usize {
        match &self.state {
            BuildState::Reading(r) => r.bytes(),
            BuildState::Ready(l) => l.bytes(),
            BuildState::Failed(_) => 0,
        }
    }
}

/// A share of the listings' budget, given back when dropped.
struct Share {
    alive: Rc<std::cell::Cell<usize>>,
    counted: usize,
}

impl Share {
    fn set(&mut self, bytes: usize) {
        let others = self.alive.get().saturating_sub(self.counted);
        self.alive.set(others + bytes);
        self.counted = bytes;
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.set(0);
    }
}

impl Reading {
    fn bytes(&self) -> usize {
        self.names.capacity()
            + self.keys.capacity()
            + self.entries.capacity() * size_of::<Entry>()
            + self.meta.capacity() * size_of::<Meta>()
            + self.key_spans.capacity() * 8
            + 32 * 1024
    }

    /// Reads a step's worth of entries; true once the directory is done.
    fn read_some(&mut self) -> Result<bool, Failure> {
        for _ in 0..STEP_ENTRIES {
            let (name, kind) = match self.reader.next_entry() {
                None => return Ok(true),
                Some(Err(_)) => return Err(Failure::Unreadable),
                Some(Ok(found)) => found,
            };
            if self.entries.len() >= MAX_ENTRIES {
                return Err(Failure::TooLarge);
            }
            let name_len = u16::try_from(name.len()).map_err(|_| Failure::Unreadable)?;
            let name_at = u32::try_from(self.names.len()).map_err(|_| Failure::TooLarge)?;
            self.names.extend_from_slice(name);
            let name = &self.names[name_at as usize..];
            let is_link = kind == EntryType::Symlink;
            // What the entry leads to, as Python's `os.path.isdir` sees it
            // (following links); read only when `d_type` does not say, or
            // when a rich listing shows sizes and times.
            let needs_stat =
                self.style.rich || matches!(kind, EntryType::Symlink | EntryType::Unknown);
            let st = if needs_stat {
                sys::stat_at(self.reader.dir(), name, false, &mut self.scratch)
            } else {
                None
            };
            let is_dir = match (kind, &st) {
                (EntryType::Dir, _) => true,
                (_, Some(st)) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                _ => false,
            };
            let refused = is_link
                && self.style.contain.as_ref().is_some_and(|root| {
                    !sys::real_path_at(self.reader.dir(), name, &mut self.scratch)
                        .is_some_and(|real| real.starts_with(root))
                });
            if self.style.rich {
                let shown = st.is_some() && !refused;
                let (size, mtime) = match (&st, shown) {
                    (Some(st), true) => (u64::try_from(st.st_size).unwrap_or(0), st.st_mtime),
                    _ => (0, 0),
                };
                self.meta.push(Meta { size, mtime, shown });
            }
            let key_at = self.keys.len() as u32;
            push_sort_key(&mut self.keys, name);
            self.key_spans
                .push((key_at, self.keys.len() as u32 - key_at));
            self.entries.push(Entry {
                name_at,
                name_len,
                is_dir,
                is_link,
            });
        }
        Ok(false)
    }

    /// Sorts as Python does (by the lower-cased name, ties in directory
    /// order) and measures the items.
    fn finish(self) -> Listing {
        let key = |i: u32| {
            let (at, len) = self.key_spans[i as usize];
            &self.keys[at as usize..(at + len) as usize]
        };
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_by(|&a, &b| key(a).cmp(key(b)));
        if self.style.rich {
            // Directories first, each group still in name order.
            order.sort_by_key(|&i| !self.entries[i as usize].is_dir);
        }
        let entries: Vec<Entry> = order.iter().map(|&i| self.entries[i as usize]).collect();
        let meta: Vec<Meta> = if self.style.rich {
            order.iter().map(|&i| self.meta[i as usize]).collect()
        } else {
            Vec::new()
        };
        let dirs = entries.iter().filter(|e| e.is_dir).count();
        let mut listing = Listing {
            names: self.names,
            entries,
            meta,
            style: self.style,
            items_len: 0,
            dirs,
            by_size: OnceCell::new(),
            by_time: OnceCell::new(),
            alive: Rc::clone(&self.share.alive),
            counted: 0,
        };
        let mut item = Vec::with_capacity(2048);
        let mut total = 0u64;
        for i in 0..listing.entries.len() {
            item.clear();
            listing.push_item(&mut item, i);
            total += item.len() as u64;
        }
        listing.items_len = total;
        listing.names.shrink_to_fit();
        // The build's share (dropped with it, here) becomes the listing's.
        drop(self.share);
        listing.counted = listing.bytes();
        listing.alive.set(listing.alive.get() + listing.counted);
        listing
    }
}

impl Listing {
    fn name(&self, e: &Entry) -> &[u8] {
        &self.names[e.name_at as usize..e.name_at as usize + usize::from(e.name_len)]
    }

    fn bytes(&self) -> usize {
        self.names.capacity()
            + self.entries.capacity() * size_of::<Entry>()
            + self.meta.capacity() * size_of::<Meta>()
            + self.by_size.get().map_or(0, |p| p.len() * 4)
            + self.by_time.get().map_or(0, |p| p.len() * 4)
    }

    /// One item: `<li><a href="link">name</a></li>` exactly as Python writes
    /// it, so scripts that scrape listings read both kinds the same way;
    /// a rich listing adds the size and time.
    fn push_item(&self, out: &mut Vec<u8>, i: usize) {
        let e = &self.entries[i];
        let name = self.name(e);
        out.extend_from_slice(b"<li><a href=\"");
        push_quoted(out, name);
        if e.is_dir {
            out.push(b'/');
        }
        out.extend_from_slice(b"\">");
        push_html(out, name);
        // A link to a directory shows `@` but links with `/`, as in Python.
        if e.is_link {
            out.push(b'@');
        } else if e.is_dir {
            out.push(b'/');
        }
        out.extend_from_slice(b"</a>");
        if let Some(m) = self.meta.get(i) {
            out.extend_from_slice(b"<span class=\"m\">");
            if !m.shown {
                out.extend_from_slice("\u{2014}".as_bytes());
            } else {
                if e.is_dir {
                    out.extend_from_slice("\u{2014}".as_bytes());
                } else {
                    push_size(out, m.size);
                }
                out.extend_from_slice(b" \xc2\xb7 ");
                push_time(out, m.mtime);
            }
            out.extend_from_slice(b"</span>");
        }
        out.extend_from_slice(b"</li>\n");
    }

    /// The entries in the order a page shows them: Python's for a plain
    /// listing; directories first for a rich one, by name, size or time.
    fn order(&self, by: SortBy) -> Option<&[u32]> {
        match by {
            SortBy::Name => None,
            SortBy::Size => Some(self.sorted(&self.by_size, |m| i128::from(m.size))),
            SortBy::Time => Some(self.sorted(&self.by_time, |m| i128::from(m.mtime))),
        }
    }

    fn sorted<'a>(&'a self, cell: &'a OnceCell<Box<[u32]>>, field: fn(&Meta) -> i128) -> &'a [u32] {
        cell.get_or_init(|| {
            let mut idx: Vec<u32> = (0..self.entries.len() as u32).collect();
            // Stable: equal sizes (or times) stay in name order, and the
            // directories, which come first, stay first.
            idx.sort_by_key(|&i| {
                let i = i as usize;
                let value = self.meta.get(i).map_or(0, field);
                (!self.entries[i].is_dir, value)
            });
            idx.into_boxed_slice()
        })
    }
}

/// How a rich listing is ordered: `?sort=name|size|time&order=asc|desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Name,
    Size,
    Time,
}

pub fn parse_sort(query: &[u8]) -> (SortBy, bool) {
    let (mut by, mut desc) = (SortBy::Name, false);
    for pair in query.split(|&b| b == b'&') {
        match pair {
            b"sort=size" => by = SortBy::Size,
            b"sort=time" => by = SortBy::Time,
            b"sort=name" => by = SortBy::Name,
            b"order=desc" => desc = true,
            b"order=asc" => desc = false,
            _ => {}
        }
    }
    (by, desc)
}

const RICH_STYLE: &str = "<style>:root{color-scheme:light dark;font-family:system-ui,sans-serif}\
body{max-width:60rem;margin:0 auto;padding:0 1rem}h1{font-size:1.3rem;word-break:break-all}\
ul{list-style:none;padding:0}li{display:flex;flex-wrap:wrap;gap:0 1rem;padding:.3rem 0;border-bottom:1px solid #8883}\
li a{flex:1 1 12rem;overflow-wrap:anywhere}.m{margin-left:auto;white-space:nowrap;opacity:.7;font-variant-numeric:tabular-nums}\
nav a{margin-right:1rem}nav a[aria-current]{font-weight:bold}</style>";

const FOOTER: &[u8] = b"</ul>\n<hr>\n</body>\n</html>\n";

/// One response's walk through a shared listing.
pub struct Page {
    listing: Rc<Listing>,
    /// Everything before the first item (it depends on the request).
    header: Vec<u8>,
    by: SortBy,
    desc: bool,
    /// Bytes of the header written, then the next item to write.
    header_sent: usize,
    next: usize,
    footer_sent: bool,
}

impl Page {
    /// The page for `target` (its title, and for a rich listing the sort
    /// asked for in its query and the parent link).
    pub fn new(listing: Rc<Listing>, target: &[u8]) -> Page {
        let url = crate::proto::urlpath::split_target(target);
        // Python's title shows the whole target, query and all; a rich
        // listing's shows the directory (its query is only the sort).
        let title = title(if listing.style.rich { url.path } else { target });
        let mut header = Vec::with_capacity(1024 + 2 * title.len());
        let (by, desc) = if listing.style.rich {
            parse_sort(url.query)
        } else {
            (SortBy::Name, false)
        };
        header.extend_from_slice(
            b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        );
        if listing.style.rich {
            header.extend_from_slice(
                b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            );
        }
        header.extend_from_slice(b"<title>");
        header.extend_from_slice(&title);
        header.extend_from_slice(b"</title>\n");
        if listing.style.rich {
            header.extend_from_slice(RICH_STYLE.as_bytes());
            header.push(b'\n');
        }
        header.extend_from_slice(b"</head>\n<body>\n<h1>");
        header.extend_from_slice(&title);
        header.extend_from_slice(b"</h1>\n");
        if listing.style.rich {
            header.extend_from_slice(b"<nav>Sort by:");
            for (key, column) in [
                ("name", SortBy::Name),
                ("size", SortBy::Size),
                ("time", SortBy::Time),
            ] {
                // The column sorted ascending now links to its descending
                // order. Every order is the same listing: crawlers (`wget
                // -r`) are asked not to follow them.
                let order = if by == column && !desc { "desc" } else { "asc" };
                let current = match (by == column, desc) {
                    (true, false) => " aria-current=\"true\">\u{25b2} ",
                    (true, true) => " aria-current=\"true\">\u{25bc} ",
                    (false, _) => ">",
                };
                let _ = write!(
                    header,
                    " <a href=\"?sort={key}&amp;order={order}\" rel=\"nofollow\"{current}{key}</a>"
                );
            }
            header.extend_from_slice(b"</nav>\n");
        }
        header.extend_from_slice(b"<hr>\n<ul>\n");
        if listing.style.rich && url.path != b"/" {
            header.extend_from_slice(
                b"<li><a href=\"../\">../</a><span class=\"m\">parent directory</span></li>\n",
            );
        }
        Page {
            listing,
            header,
            by,
            desc,
            header_sent: 0,
            next: 0,
            footer_sent: false,
        }
    }

    /// The whole page's length, for `Content-Length`.
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.listing.items_len + FOOTER.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the next part of the page to `out`, about `budget` bytes;
    /// true once the page is complete.
    pub fn fill(&mut self, out: &mut Vec<u8>, budget: usize) -> bool {
        let limit = out.len() + budget;
        if self.header_sent < self.header.len() {
            let take = (self.header.len() - self.header_sent).min(budget);
            out.extend_from_slice(&self.header[self.header_sent..self.header_sent + take]);
            self.header_sent += take;
            if self.header_sent < self.header.len() {
                return false;
            }
        }
        let listing = &*self.listing;
        let count = listing.entries.len();
        let order = listing.order(self.by);
        while self.next < count && out.len() < limit {
            let i = self.position(self.next, order);
            listing.push_item(out, i);
            self.next += 1;
        }
        if self.next < count {
            return false;
        }
        if !self.footer_sent {
            out.extend_from_slice(FOOTER);
            self.footer_sent = true;
        }
        true
    }

    /// Which entry is the `n`th on this page. A rich listing's entries are
    /// directories first; descending reverses each group, directories
    /// still first.
    fn position(&self, n: usize, order: Option<&[u32]>) -> usize {
        let listing = &*self.listing;
        if !listing.style.rich {
            return n;
        }
        let (dirs, all) = (listing.dirs, listing.entries.len());
        let k = match (n < dirs, self.desc) {
            (true, false) | (false, false) => n,
            (true, true) => dirs - 1 - n,
            (false, true) => dirs + (all - dirs - 1 - (n - dirs)),
        };
        order.map_or(k, |idx| idx[k] as usize)
    }
}

fn title(target: &[u8]) -> Vec<u8> {
    let mut title = b"Directory listing for ".to_vec();
    push_html(&mut title, &display_path(target));
    title
}

/// The listings in use hold the whole budget: try again later (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

/// The listings of this server: shared while in use, reused for a moment.
#[derive(Default)]
pub struct Listings {
    map: HashMap<(u64, u64), Cached>,
    /// Bytes of every finished listing still alive (see `Listing::alive`).
    alive: Rc<std::cell::Cell<usize>>,
}

struct Cached {
    build: Rc<RefCell<Build>>,
    /// The directory's modification and change times when it was read.
    stamp: (i64, i64, i64, i64),
    style: Style,
}

impl Listings {
    /// The listing of the open directory `dir`: one already built or being
    /// built for it, or a new build. `Err(OverBudget)` when the listings in
    /// use hold [`LISTINGS_BUDGET`] already.
    pub fn get(
        &mut self,
        dir: File,
        style: &Style,
        now: Instant,
    ) -> Result<Rc<RefCell<Build>>, OverBudget> {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = dir.metadata() else {
            return Ok(Rc::new(RefCell::new(Build {
                state: BuildState::Failed(Failure::Unreadable),
                started: now,
                last_step: None,
            })));
        };
        let key = (meta.dev(), meta.ino());
        let stamp = (
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        );
        // The bytes every listing holds, being read, cached or only held
        // by connections sending it.
        let alive = self.alive.get();
        if let Some(c) = self.map.get(&key)
            && c.stamp == stamp
            && c.style == *style
        {
            let b = c.build.borrow();
            let age = now.saturating_duration_since(b.started);
            let over_budget = matches!(b.state, BuildState::Failed(Failure::OverBudget));
            let in_use = Rc::strong_count(&c.build) > 1;
            // Reused while fresh, while it is still being sent (up to a
            // limit: a listing is not kept stale for ever by a stream of
            // readers), or when a new one would not fit the budget.
            if !over_budget
                && (age < REUSE_FOR
                    || matches!(b.state, BuildState::Reading(_))
                    || (in_use && age < REUSE_WHILE_SENT)
                    || alive >= LISTINGS_BUDGET)
            {
                drop(b);
                return Ok(Rc::clone(&c.build));
            }
        }
        self.map.remove(&key);
        // Listings no connection holds are dropped first; a new one is made
        // only within the budget.
        let idle: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|(_, c)| Rc::strong_count(&c.build) == 1)
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if self.alive.get() < LISTINGS_BUDGET / 2 && self.map.len() < MAX_CACHED {
                break;
            }
            self.map.remove(&k);
        }
        if self.alive.get() >= LISTINGS_BUDGET {
            return Err(OverBudget);
        }
        let build = Rc::new(RefCell::new(Build::counted(
            dir,
            style.clone(),
            now,
            Rc::clone(&self.alive),
        )));
        if self.map.len() < MAX_CACHED {
            self.map.insert(
                key,
                Cached {
                    build: Rc::clone(&build),
                    stamp,
                    style: style.clone(),
                },
            );
        }
        Ok(build)
    }
}

/// `980 B`, `1.5 KiB`, `12.0 MiB`...
fn push_size(out: &mut Vec<u8>, size: u64) {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if size < 1024 {
        let _ = write!(out, "{size} B");
        return;
    }
    // Tenths of the unit, rounded, in integers: float formatting would add
    // tens of KiB to the binary for this one line.
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while size / scale >= 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    let tenths = (u128::from(size) * 10 + u128::from(scale) / 2) / u128::from(scale);
    let _ = write!(out, "{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]);
}

/// `2026-11-21 18:39 UTC`. Any time a file system can hold is shown,
/// clamped to the years 1 to 9999 (the arithmetic cannot overflow there).
fn push_time(out: &mut Vec<u8>, secs: i64) {
    let secs = secs.clamp(
        -62_135_596_800,
        crate::server::clock::LAST_FOUR_DIGIT_SECOND as i64,
    );
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    );
}

/// Appends the sort key of a name: Python's `name.lower()` of the name
/// decoded with `surrogateescape`, as UTF-8 (an undecodable byte `b` as the
/// lone surrogate U+DC00+b). Comparing these bytes compares code points,
/// which is how Python compares the strings.
pub fn push_sort_key(out: &mut Vec<u8>, name: &[u8]) {
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, None),
            Err(e) => {
                // ok: valid_up_to marks a prefix that is valid UTF-8.
                let s = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                (s, Some(rest[e.valid_up_to()]))
            }
        };
        // `str::to_lowercase`, as Python's `lower`, knows the final sigma.
        out.extend_from_slice(valid.to_lowercase().as_bytes());
        match bad {
            Some(b) => {
                let cp = 0xDC00 + u32::from(b);
                out.extend_from_slice(&[
                    0xE0 | (cp >> 12) as u8,
                    0x80 | ((cp >> 6) & 0x3F) as u8,
                    0x80 | (cp & 0x3F) as u8,
                ]);
                rest = &rest[valid.len() + 1..];
            }
            None => break,
        }
    }
}

/// A name's sort key on its own (see [`push_sort_key`]).
pub fn sort_key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len());
    push_sort_key(&mut key, name);
    key
}

/// The whole listing of the directory at `dir`, requested as `target`,
/// built and rendered at once: for tests and benchmarks. An unreadable
/// directory is an error.
pub fn render_path(
    dir: &Path,
    target: &[u8],
    style: Style,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    let file = File::open(dir).map_err(|_| Failure::Unreadable)?;
    render_path_file(file, target, style, out)
}

/// [`render_path`] for a directory already open (a threaded server's
/// handlers, which cannot share the loop's listings).
pub fn render_path_file(
    file: File,
    target: &[u8],
    style: Style,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    let mut build = Build::new(file, style, Instant::now());
    let listing = loop {
        build.last_step = None;
        match build.step(Instant::now()) {
            Progress::Ready(l) => break Rc::clone(l),
            Progress::Working => {}
            Progress::Failed(f) => return Err(f),
        }
    };
    let mut page = Page::new(listing, target);
    let want = page.len();
    let start = out.len();
    while !page.fill(out, 64 * 1024) {}
    debug_assert_eq!((out.len() - start) as u64, want);
    Ok(())
}

/// Python's listing of `dir` (see [`render_path`]).
pub fn render(dir: &Path, target: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
    render_path(
        dir,
        target,
        Style {
            rich: false,
            contain: None,
        },
        out,
    )
}

/// The rich listing of `dir`; the sort comes from `target`'s query.
pub fn render_rich(dir: &Path, target: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
    render_path(
        dir,
        target,
        Style {
            rich: true,
            contain: None,
        },
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tinyserve-listing-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn listing_matches_python_format() {
        let dir = tempdir("format");
        fs::write(dir.join("b.txt"), "").unwrap();
        fs::write(dir.join("A&<x>.txt"), "").unwrap();
        fs::write(dir.join("sp ace"), "").unwrap();
        fs::create_dir(dir.join("Sub")).unwrap();
        std::os::unix::fs::symlink("Sub", dir.join("link")).unwrap();
        fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xff")), "").unwrap();
        let mut out = Vec::new();
        render(&dir, b"/d%20x/?q=<1>", &mut out).unwrap();
        let expected = b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>Directory listing for /d x/?q=&lt;1&gt;</title>\n</head>\n<body>\n\
<h1>Directory listing for /d x/?q=&lt;1&gt;</h1>\n<hr>\n<ul>\n\
<li><a href=\"A%26%3Cx%3E.txt\">A&amp;&lt;x&gt;.txt</a></li>\n\
<li><a href=\"b.txt\">b.txt</a></li>\n\
<li><a href=\"bad%ED%B3%BF\">bad\xff</a></li>\n\
<li><a href=\"link/\">link@</a></li>\n\
<li><a href=\"sp%20ace\">sp ace</a></li>\n\
<li><a href=\"Sub/\">Sub/</a></li>\n\
</ul>\n<hr>\n</body>\n</html>\n";
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rich_listing_sorts_and_keeps_pythons_links() {
        let dir = tempdir("rich");
        fs::write(dir.join("big.bin"), vec![0u8; 3000]).unwrap();
        fs::write(dir.join("a&b.txt"), "x").unwrap();
        fs::create_dir(dir.join("zdir")).unwrap();
        let mut out = Vec::new();
        render_rich(&dir, b"/sub/?sort=size&order=desc", &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(html.contains("color-scheme:light dark"));
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("<li><a href=\"../\">../</a>"));
        // Directories first, then by size, largest first.
        let pos = |s: &str| html.find(s).unwrap();
        assert!(pos("zdir/") < pos("big.bin") && pos("big.bin") < pos("a&amp;b.txt"));
        assert!(html.contains("<li><a href=\"a%26b.txt\">a&amp;b.txt</a>"));
        assert!(html.contains("2.9 KiB"));
        assert!(!html.contains("<script"));
        // The order shown is visible and marked; every sort link is nofollow;
        // the heading has no query string.
        assert!(
            html.contains("rel=\"nofollow\" aria-current=\"true\">\u{25bc} size</a>"),
            "{html}"
        );
        assert_eq!(
            html.matches("?sort=").count(),
            html.matches("rel=\"nofollow\"").count()
        );
        assert!(
            html.contains("<h1>Directory listing for /sub/</h1>"),
            "{html}"
        );
        assert!(html.contains("<title>Directory listing for /sub/</title>"));
        let mut root = Vec::new();
        render_rich(&dir, b"/", &mut root).unwrap();
        assert!(!String::from_utf8(root).unwrap().contains("href=\"../\""));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_order_lists_every_entry_once_and_the_length_is_exact() {
        let dir = tempdir("orders");
        for i in 0..700 {
            let name = format!("f{:03}-{}", (i * 37) % 700, "x".repeat(i % 13));
            fs::write(dir.join(name), vec![0u8; (i * 7919) % 5000]).unwrap();
        }
        for i in 0..40 {
            fs::create_dir(dir.join(format!("D{i}"))).unwrap();
        }
        for query in [
            "",
            "?sort=size",
            "?sort=size&order=desc",
            "?sort=time",
            "?order=desc",
        ] {
            let mut out = Vec::new();
            render_rich(&dir, format!("/x/{query}").as_bytes(), &mut out).unwrap();
            let html = String::from_utf8(out).unwrap();
            assert_eq!(html.matches("<li><a href=\"f").count(), 700, "{query}");
            assert_eq!(html.matches("<li><a href=\"D").count(), 40, "{query}");
            let last_dir = html.rfind("href=\"D").unwrap();
            let first_file = html.find("href=\"f").unwrap();
            assert!(last_dir < first_file, "{query}: directories first");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_times_and_sort_queries() {
        let mut out = Vec::new();
        push_size(&mut out, 999);
        out.push(b'|');
        push_size(&mut out, 1536);
        out.push(b'|');
        push_size(&mut out, 5 << 30);
        out.push(b'|');
        push_time(&mut out, 1_795_286_369);
        out.push(b'|');
        push_time(&mut out, i64::MAX);
        out.push(b'|');
        push_time(&mut out, i64::MIN);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "999 B|1.5 KiB|5.0 GiB|2026-11-21 18:39 UTC|9999-12-31 23:59 UTC|0001-01-01 00:00 UTC"
        );
        assert_eq!(parse_sort(b"sort=time&order=desc"), (SortBy::Time, true));
        assert_eq!(parse_sort(b"junk"), (SortBy::Name, false));
    }

    #[test]
    fn unreadable_directory_is_an_error() {
        let mut out = Vec::new();
        assert!(render(Path::new("/nonexistent/dir"), b"/", &mut out).is_err());
    }

    #[test]
    fn sort_key_lowercases_and_escapes_in_code_point_order() {
        assert_eq!(sort_key(b"Ab"), b"ab");
        assert_eq!(sort_key(b"\xff"), [0xED, 0xB3, 0xBF]);
        // U+DCFF sorts after U+D7FF and before U+E000, as in Python.
        assert!(sort_key("\u{d7ff}".as_bytes()) < sort_key(b"\xff"));
        assert!(sort_key(b"\xff") < sort_key("\u{e000}".as_bytes()));
        assert_eq!(sort_key("ΑΣ".as_bytes()), "ας".as_bytes());
    }
}
