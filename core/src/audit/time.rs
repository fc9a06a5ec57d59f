//! The timestamps records carry.

use std::fmt::{self, Display};
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC with microseconds: `2024-05-01T12:34:56.123456Z`.
pub struct Rfc3339(pub SystemTime);

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds and microseconds since the epoch (0 for a clock before it).
fn unix_parts(t: SystemTime) -> (i64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        d.subsec_micros(),
    )
}

impl Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, micros) = unix_parts(self.0);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

/// The RFC 3164 timestamp of a syslog header (`May  1 12:34:56`), in UTC: local syslog
/// daemons (journald, rsyslog's imuxsock) replace it with the time of reception anyway.
pub(crate) struct Rfc3164(pub(crate) SystemTime);

impl Display for Rfc3164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (secs, _) = unix_parts(self.0);
        let (_, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let month = MONTHS
            .get(mo.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("Jan");
        write!(
            f,
            "{month} {d:2} {:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}
