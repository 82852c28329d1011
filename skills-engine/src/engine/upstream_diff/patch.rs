//! Patches in `git format-patch` form, so that `git am` takes them and
//! keeps the author, the author date and the message.
//!
//! Each is written as bytes: a file's content need not be UTF-8, and a
//! patch that changed it on the way would not apply.

use std::path::{Path, PathBuf};

use crate::SkillError;

/// One patch of the series, before it is written.
pub(super) struct Patch {
    /// The commit it came from.
    pub(super) id: git2::Oid,
    pub(super) author_name: String,
    pub(super) author_email: String,
    pub(super) author_time: git2::Time,
    /// The message's first paragraph, on one line.
    pub(super) summary: String,
    /// The rest of the message.
    pub(super) body: String,
    /// `git diff --stat` of the change.
    pub(super) stat: Vec<u8>,
    /// The change against upstream as the earlier patches leave it.
    pub(super) diff: Vec<u8>,
}

impl Patch {
    /// The whole text, as number `number` of `total`.
    fn render(&self, number: usize, total: usize) -> Vec<u8> {
        let mut text = format!(
            "From {} Mon Sep 17 00:00:00 2001\nFrom: {} <{}>\nDate: {}\nSubject: [PATCH {number}/{total}] {}\n",
            self.id,
            self.author_name,
            self.author_email,
            rfc2822(self.author_time),
            self.summary,
        );
        // As format-patch: a message beyond ASCII says its charset, which
        // `git am` then decodes it from.
        if !(self.author_name.is_ascii() && self.summary.is_ascii() && self.body.is_ascii()) {
            text.push_str(
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n",
            );
        }
        text.push('\n');
        let body = self.body.trim();
        if !body.is_empty() {
            text.push_str(body);
            text.push('\n');
        }
        text.push_str("---\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.stat);
        bytes.push(b'\n');
        bytes.extend_from_slice(&self.diff);
        bytes.extend_from_slice(b"-- \npincer upstream-diff\n\n");
        bytes
    }
}

/// The diff from `old` to `new` as `git diff` prints it (binary files as
/// `GIT binary patch`, which `git am` applies), and its stat.
pub(super) fn diff_text(
    repo: &git2::Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
) -> Result<(Vec<u8>, Vec<u8>), SkillError> {
    let mut options = git2::DiffOptions::new();
    options.show_binary(true);
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), Some(&mut options))?;
    let stat = diff
        .stats()?
        .to_buf(git2::DiffStatsFormat::FULL, 72)?
        .to_vec();
    let mut text = Vec::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        // Only the lines of a hunk come without their marker.
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })?;
    Ok((stat, text))
}

/// Writes the series into `out`, `NNNN-<summary>.patch` each, numbered
/// `[PATCH n/m]`.
pub(super) fn write_series(out: &Path, patches: &[Patch]) -> Result<Vec<PathBuf>, SkillError> {
    std::fs::create_dir_all(out).map_err(SkillError::io(out))?;
    let total = patches.len();
    let mut written = Vec::new();
    for (index, patch) in patches.iter().enumerate() {
        let number = index + 1;
        let slug = slug(&patch.summary);
        let name = format!("{number:04}-{}.patch", &slug[..slug.len().min(50)]);
        let path = out.join(name);
        std::fs::write(&path, patch.render(number, total)).map_err(SkillError::io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Empties the default patch folder of an earlier run's patches.
pub(super) fn remove_patches(dir: &Path) -> Result<(), SkillError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SkillError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries {
        let path = entry.map_err(SkillError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "patch") {
            std::fs::remove_file(&path).map_err(SkillError::io(&path))?;
        }
    }
    Ok(())
}

/// A commit summary as a file name: lowercase ASCII words joined by `-`
/// (all ASCII, so cutting it at any byte is safe).
fn slug(summary: &str) -> String {
    summary
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// A git time as RFC 2822 in its own offset (`Tue, 14 Nov 2023 22:13:20
/// +0000`), as `git format-patch` writes `Date:`.
fn rfc2822(time: git2::Time) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let offset = i64::from(time.offset_minutes());
    let local = time.seconds() + offset * 60;
    let days = local.div_euclid(86_400);
    let seconds = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01, day 0, was a Thursday.
    let weekday = DAYS[usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday}, {day} {month} {year} {:02}:{:02}:{:02} {}{:02}{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60,
        time.sign(),
        offset.abs() / 60,
        offset.abs() % 60,
    )
}

/// The proleptic Gregorian (year, month 1..=12, day) of a day counted from
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn dates_are_rfc2822_in_the_authors_offset() {
        // Checked against `date -R` in those zones.
        let cases = [
            (0, 0, "Thu, 1 Jan 1970 00:00:00 +0000"),
            (1_700_000_000, 0, "Tue, 14 Nov 2023 22:13:20 +0000"),
            (1_700_000_000, 330, "Wed, 15 Nov 2023 03:43:20 +0530"),
            (951_782_400, -210, "Mon, 28 Feb 2000 20:30:00 -0330"),
            (951_782_400, 0, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (951_868_800, 0, "Wed, 1 Mar 2000 00:00:00 +0000"),
            (-86_400, 0, "Wed, 31 Dec 1969 00:00:00 +0000"),
        ];
        for (seconds, offset, expected) in cases {
            assert_eq!(
                rfc2822(git2::Time::new(seconds, offset)),
                expected,
                "{seconds} {offset}"
            );
        }
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("Fix: the idle timeout (again)"),
            "fix-the-idle-timeout-again"
        );
        assert_eq!(slug("Zoë's fix"), "zo-s-fix");
    }
}
