//! The time, read once per turn of the event loop and formatted once per
//! second, so that no request pays for formatting dates.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Clock {
    /// Monotonic time of this loop turn, for deadlines.
    pub now: Instant,
    unix_secs: u64,
    http_date: [u8; 29],
    log_date: [u8; 20],
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Clock {
    pub fn new() -> Clock {
        let mut clock = Clock {
            now: Instant::now(),
            unix_secs: u64::MAX,
            http_date: [b' '; 29],
            log_date: [b' '; 20],
        };
        clock.tick();
        clock
    }

    /// Reads the clocks; returns whether a new second has begun.
    pub fn tick(&mut self) -> bool {
        self.now = Instant::now();
        let wall = SystemTime::now();
        // A clock set before 1970 reads as 1970 rather than failing.
        let secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs == self.unix_secs {
            return false;
        }
        self.unix_secs = secs;
        self.http_date = http_date(secs);
        self.format_log_date(secs);
        true
    }

    /// The instant `wait` from now. Any `Duration` is taken: one too far to
    /// represent is a deadline that never comes (a century away).
    pub fn deadline(&self, wait: Duration) -> Instant {
        const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
        self.now
            .checked_add(wait.min(FAR))
            .or_else(|| self.now.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(self.now)
    }

    /// Wall-clock seconds since 1970 of this loop turn.
    pub fn unix_secs(&self) -> u64 {
        self.unix_secs
    }

    /// `Sat, 21 Nov 2026 18:39:29 GMT`, for `Date` headers.
    pub fn http_date(&self) -> &[u8] {
        &self.http_date
    }

    /// `21/Nov/2026 18:39:29` in local time, as Python's access log writes it.
    pub fn log_date(&self) -> &[u8] {
        &self.log_date
    }

    fn format_log_date(&mut self, secs: u64) {
        let t = libc::time_t::try_from(secs).unwrap_or(0);
        // SAFETY: localtime_r writes only into the `tm` we pass.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            return;
        }
        let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("???");
        let text = format!(
            "{:02}/{}/{:04} {:02}:{:02}:{:02}",
            tm.tm_mday,
            month,
            tm.tm_year + 1900,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        );
        let len = text.len().min(20);
        self.log_date[..len].copy_from_slice(&text.as_bytes()[..len]);
    }
}

/// 9999-12-31 23:59:59 UTC.
pub const LAST_FOUR_DIGIT_SECOND: u64 = 253_402_300_799;

/// An IMF-fixdate (`Sat, 21 Nov 2026 18:39:29 GMT`), formatted without
/// allocating.
pub fn http_date(unix_secs: u64) -> [u8; 29] {
    use std::io::Write;
    let mut buf = [b' '; 29];
    // An IMF-fixdate has a four-digit year (httpdate panics beyond it): a
    // later time reads as the last second of 9999.
    let secs = unix_secs.min(LAST_FOUR_DIGIT_SECOND);
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs));
    let _ = write!(&mut buf[..], "{date}");
    buf
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_have_fixed_shape() {
        let clock = Clock::new();
        let http = std::str::from_utf8(clock.http_date()).unwrap();
        assert!(http.ends_with(" GMT"), "{http}");
        assert!(httpdate::parse_http_date(http).is_ok());
        let log = std::str::from_utf8(clock.log_date()).unwrap();
        assert_eq!(log.as_bytes()[2], b'/');
        assert_eq!(log.as_bytes()[6], b'/');
        assert_eq!(log.len(), 20);
    }

    #[test]
    fn far_times_do_not_panic() {
        assert_eq!(&http_date(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(&http_date(LAST_FOUR_DIGIT_SECOND + 1), &http_date(u64::MAX));
        let clock = Clock::new();
        assert!(clock.deadline(Duration::MAX) > clock.now);
        assert!(clock.deadline(Duration::from_secs(u64::MAX)) > clock.now);
    }
}
