//! When scheduled tasks run: cron (five fields), interval, or once, in the
//! owner's time zone.
//!
//! [`next_run`] is a pure function of the schedule, an instant and a zone, so
//! the instants are tested without waiting (daylight-saving changes
//! included). The daemon's loop asks a [`Clock`] what time it is; a task
//! whose time has come becomes a message in its group, and its next run is
//! computed from *now*, so runs missed while the daemon was down happen
//! once, not once per missed slot.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// What time it is (the scheduler's only source of it).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The first run strictly after `after` (for `once`: its instant, if it has
/// not passed `after`… unless it never ran, see [`first_run`]). `None`: no
/// more runs.
pub fn next_run(
    kind: &str,
    value: &str,
    after: Timestamp,
    zone: &TimeZone,
) -> Result<Option<Timestamp>, String> {
    match kind {
        "cron" => {
            let cron: croner::Cron = value
                .parse()
                .map_err(|err| format!("invalid cron expression {value:?}: {err}"))?;
            let zoned = after.to_zoned(zone.clone());
            let next = cron
                .find_next_occurrence(&zoned, false)
                .map_err(|err| format!("no next run for {value:?}: {err}"))?;
            Ok(Some(next.timestamp()))
        }
        "interval" => {
            let every = crate::time::parse_duration(value)?;
            let span = jiff::SignedDuration::try_from(every).map_err(|err| err.to_string())?;
            Ok(Some(
                after.checked_add(span).map_err(|err| err.to_string())?,
            ))
        }
        "once" => Ok(None),
        other => Err(format!("unknown schedule {other:?}")),
    }
}

/// The first run of a task created (or first seen) at `now`: a `once` task
/// runs at its instant, even if that has passed (then right away).
pub fn first_run(
    kind: &str,
    value: &str,
    now: Timestamp,
    zone: &TimeZone,
) -> Result<Option<Timestamp>, String> {
    match kind {
        "once" => parse_instant(value).map(Some),
        _ => next_run(kind, value, now, zone),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_instant(value: &str) -> Result<Timestamp, String> {
    value
        .parse::<Timestamp>()
        .map_err(|err| format!("invalid instant {value:?}: {err}"))
}

/// A timestamp as the store keeps it.
pub fn stored(t: Timestamp) -> String {
    crate::time::format(std::time::UNIX_EPOCH + Duration::from_secs(t.as_second().max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn cron_fires_at_local_wall_clock_times() {
        let berlin = zone("Europe/Berlin");
        // 09:00 in Berlin in winter is 08:00 UTC.
        let next = next_run("cron", "0 9 * * *", at("2026-01-10T07:00:00Z"), &berlin).unwrap();
        assert_eq!(next, Some(at("2026-01-10T08:00:00Z")));
        // After it fired, the next is a day later.
        let next = next_run("cron", "0 9 * * *", at("2026-01-10T08:00:00Z"), &berlin).unwrap();
        assert_eq!(next, Some(at("2026-01-11T08:00:00Z")));
        // Weekdays only: Saturday 2026-01-10 → Monday the 12th.
        let next = next_run("cron", "30 7 * * 1-5", at("2026-01-10T07:00:00Z"), &berlin).unwrap();
        assert_eq!(next, Some(at("2026-01-12T06:30:00Z")));
    }

    #[test]
    fn cron_across_daylight_saving_changes() {
        let new_york = zone("America/New_York");
        // Spring forward (2026-03-08): 09:00 EST is 14:00 UTC, then 09:00 EDT is 13:00 UTC.
        let before = next_run("cron", "0 9 * * *", at("2026-03-07T12:00:00Z"), &new_york).unwrap();
        assert_eq!(before, Some(at("2026-03-07T14:00:00Z")));
        let after = next_run("cron", "0 9 * * *", at("2026-03-07T14:00:00Z"), &new_york).unwrap();
        assert_eq!(
            after,
            Some(at("2026-03-08T13:00:00Z")),
            "23 hours later, same wall clock"
        );
        // 02:30 does not exist on that day: the run is not lost, nor doubled.
        let gap = next_run("cron", "30 2 * * *", at("2026-03-08T05:00:00Z"), &new_york)
            .unwrap()
            .unwrap();
        assert!(
            gap > at("2026-03-08T05:00:00Z") && gap <= at("2026-03-09T06:30:00Z"),
            "{gap}"
        );
        // Fall back (2026-11-01): 09:00 EDT is 13:00 UTC, then 09:00 EST is 14:00 UTC.
        let fall = next_run("cron", "0 9 * * *", at("2026-10-31T13:00:00Z"), &new_york).unwrap();
        assert_eq!(
            fall,
            Some(at("2026-11-01T14:00:00Z")),
            "25 hours later, same wall clock"
        );
    }

    #[test]
    fn intervals_and_once() {
        let utc = TimeZone::UTC;
        let next = next_run("interval", "90m", at("2026-01-01T00:00:00Z"), &utc).unwrap();
        assert_eq!(next, Some(at("2026-01-01T01:30:00Z")));
        assert_eq!(
            next_run(
                "once",
                "2026-01-01T00:00:00Z",
                at("2025-01-01T00:00:00Z"),
                &utc
            )
            .unwrap(),
            None
        );
        let first = first_run(
            "once",
            "2026-05-01T09:00:00Z",
            at("2026-06-01T00:00:00Z"),
            &utc,
        )
        .unwrap();
        assert_eq!(
            first,
            Some(at("2026-05-01T09:00:00Z")),
            "a missed one-shot still runs, once"
        );
        assert!(next_run("cron", "every day", at("2026-01-01T00:00:00Z"), &utc).is_err());
        assert_eq!(stored(at("2026-01-01T01:30:00Z")), "2026-01-01T01:30:00Z");
    }
}
