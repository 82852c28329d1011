//! Timestamps as the store keeps them: UTC, `YYYY-MM-DDTHH:MM:SSZ`, so that
//! text order is time order. Small enough not to need a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, formatted.
pub fn now() -> String {
    format(SystemTime::now())
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (times before 1970 clamp to the epoch).
pub fn format(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `--since`: an absolute `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, or an age
/// such as `90m`, `2h`, `7d` (before `now`). Returns a stored-format timestamp.
pub fn parse_since(text: &str, now: SystemTime) -> Result<String, String> {
    let text = text.trim();
    let age = match text.strip_suffix('d') {
        Some(days) => Some(Duration::from_secs(
            days.parse::<u64>()
                .map_err(|_| format!("bad age {text:?}"))?
                .saturating_mul(86_400),
        )),
        None => parse_duration(text).ok(),
    };
    if let Some(age) = age {
        let age = age.min(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        return Ok(format(now - age));
    }
    let valid_date = |d: &str| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    if valid_date(text) {
        return Ok(format!("{text}T00:00:00Z"));
    }
    // By bytes: a text cut inside a character is not a time, not a panic.
    let clock = |t: &[u8]| {
        t.len() == 8
            && t.iter().enumerate().all(|(i, b)| match i {
                2 | 5 => *b == b':',
                _ => b.is_ascii_digit(),
            })
    };
    let bytes = text.as_bytes();
    if bytes.len() == 20
        && text.get(..10).is_some_and(valid_date)
        && bytes[10] == b'T'
        && clock(&bytes[11..19])
        && bytes[19] == b'Z'
    {
        return Ok(text.to_owned());
    }
    Err(format!(
        "cannot read {text:?} as a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or an age like 90m, 2h, 7d"
    ))
}

/// Parses `90`, `90s`, `1500ms`, `5m` or `1h` into a non-zero duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a number with an optional unit (ms, s, m, h)".to_owned())?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    if duration.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(format(t), "2024-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(format(t), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn since_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(parse_since("2h", now).unwrap(), "2024-02-29T10:34:56Z");
        assert_eq!(parse_since("1d", now).unwrap(), "2024-02-28T12:34:56Z");
        assert_eq!(
            parse_since("2024-01-05", now).unwrap(),
            "2024-01-05T00:00:00Z"
        );
        assert_eq!(
            parse_since("2024-01-05T01:02:03Z", now).unwrap(),
            "2024-01-05T01:02:03Z"
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2024-1-5", now).is_err());
        // Found by the host_api_body fuzzer: 20 bytes with a character
        // across byte 10 panicked; a clock of letters passed.
        assert!(parse_since("2024-01-0\u{e9}01:02:03Z", now).is_err());
        assert!(parse_since("2024-01-05T01:02:L3Z", now).is_err());
    }
}
