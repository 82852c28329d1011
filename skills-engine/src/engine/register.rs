//! Registry lines (`[[register]]` in skill.toml): one line per skill in a
//! source file of the owner's build, between a line containing
//! `apply-skill: begin` and one containing `apply-skill: end`, indented like
//! the begin line, the block kept sorted (so two skills give the same file
//! whichever is applied first). Lines the engine did not write stay as they
//! are.

use super::{Engine, FileChange, PlannedFile, read_optional, take_planned, utf8};
use crate::SkillError;
use crate::manifest::{BEGIN, END};
use crate::manifest::{RegisterLine, SkillManifest, check_relative, walk_without_symlinks};

/// A line without its line ending and indentation.
fn content(line: &str) -> &str {
    line.trim()
}

/// The indices of the begin and end lines: exactly one of each, in order.
fn block(lines: &[&str]) -> Result<(usize, usize), String> {
    let only = |marker: &str| -> Result<usize, String> {
        let found: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.contains(marker))
            .map(|(index, _)| index)
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!(
                "no line containing `{marker}` (skills register their lines between a line \
                 containing `{BEGIN}` and one containing `{END}`)"
            )),
            more => Err(format!(
                "{} lines contain `{marker}` (lines {}); there must be exactly one",
                more.len(),
                more.iter()
                    .map(|index| (index + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    };
    let (begin, end) = (only(BEGIN)?, only(END)?);
    if end < begin {
        return Err(format!(
            "the line containing `{END}` (line {}) comes before the one containing `{BEGIN}` \
             (line {})",
            end + 1,
            begin + 1
        ));
    }
    Ok((begin, end))
}

/// `text` with `line` in the block, indented like its begin line, before the
/// first line of the block that sorts after it. An error when the block is
/// not there once, or when the file has the line already (anywhere: a second
/// registration would run it twice).
pub(crate) fn insert_line(text: &str, line: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (begin, end) = block(&lines)?;
    if let Some(at) = lines.iter().position(|l| content(l) == line) {
        return Err(format!(
            "it has the line `{line}` already (line {}); take it out first",
            at + 1
        ));
    }
    let marker = lines[begin];
    let indent = &marker[..marker.len() - marker.trim_start().len()];
    let ending = if marker.ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let at = (begin + 1..end)
        .find(|&index| content(lines[index]) > line)
        .unwrap_or(end);
    let inserted = format!("{indent}{line}{ending}");
    lines.insert(at, &inserted);
    Ok(lines.concat())
}

/// `text` without `line` in the block (its first occurrence there). No such
/// line in the block: `text` as it is (the owner took it out, or moved it out
/// of the block, where it is theirs). An error when the block is not there
/// once.
pub(crate) fn remove_line(text: &str, line: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (begin, end) = block(&lines)?;
    if let Some(at) = (begin + 1..end).find(|&index| content(lines[index]) == line) {
        lines.remove(at);
    }
    Ok(lines.concat())
}

impl Engine {
    /// Refuses a registry file that is not a tracked, regular file of the
    /// fork reached without a symlink (as the files a skill modifies).
    fn check_registry_file(&self, file: &str) -> Result<(), SkillError> {
        let refuse = |why: String| SkillError::Refused(format!("{file} in this fork: {why}"));
        match walk_without_symlinks(&self.root, file).map_err(refuse)? {
            Some(meta) if meta.is_file() => {}
            Some(_) => return Err(refuse("not a regular file".into())),
            None => {
                return Err(refuse(
                    "no such file (the skill registers a line in it)".into(),
                ));
            }
        }
        if !self.tracked(file)? {
            return Err(refuse(
                "not tracked by git, so the skill's line would not be committed".into(),
            ));
        }
        Ok(())
    }

    /// The skill's lines in their files (a file an earlier step of the plan
    /// wrote is edited after it).
    pub(super) fn plan_register(
        &self,
        manifest: &SkillManifest,
        planned: &mut Vec<PlannedFile>,
    ) -> Result<(), SkillError> {
        for entry in &manifest.register {
            self.check_registry_file(&entry.file)?;
            let current = take_planned(planned, &self.root, &entry.file)?;
            let text = utf8(&entry.file, current)?;
            let after = insert_line(&text, &entry.line)
                .map_err(|why| SkillError::Refused(format!("{}: {why}", entry.file)))?;
            planned.push(PlannedFile {
                path: entry.file.clone(),
                change: FileChange::Register,
                before: read_optional(&self.root.join(&entry.file))?,
                after: Some(after.into_bytes()),
                conflicted: false,
            });
        }
        Ok(())
    }

    /// The lines an apply recorded, out of their blocks again (a file that
    /// is gone has nothing to take out).
    pub(super) fn unplan_register(
        &self,
        skill: &str,
        recorded: &[RegisterLine],
        planned: &mut Vec<PlannedFile>,
    ) -> Result<(), SkillError> {
        for entry in recorded {
            check_relative(&entry.file).map_err(|why| {
                SkillError::Refused(format!(
                    "{}: {skill}'s registry file {:?} {why}",
                    crate::state::STATE_FILE,
                    entry.file
                ))
            })?;
            let path = self.root.join(&entry.file);
            let here = walk_without_symlinks(&self.root, &entry.file).map_err(|why| {
                SkillError::Refused(format!("{} in this fork: {why}", entry.file))
            })?;
            if here.is_none() && !planned.iter().any(|p| p.path == entry.file) {
                continue;
            }
            let current = take_planned(planned, &self.root, &entry.file)?;
            let text = utf8(&entry.file, current)?;
            let after = remove_line(&text, &entry.line)
                .map_err(|why| SkillError::Refused(format!("{}: {why}", entry.file)))?;
            planned.push(PlannedFile {
                path: entry.file.clone(),
                change: FileChange::Register,
                before: read_optional(&path)?,
                after: Some(after.into_bytes()),
                conflicted: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::check_line;

    const FILE: &str = "pub fn register(registry: &mut Registry) {\n    // apply-skill: begin\n    // apply-skill: end\n}\n";

    #[test]
    fn lines_go_in_sorted_and_come_out_as_they_went_in() {
        let one = insert_line(FILE, "b::register(registry);").unwrap();
        assert_eq!(
            one,
            "pub fn register(registry: &mut Registry) {\n    // apply-skill: begin\n    b::register(registry);\n    // apply-skill: end\n}\n"
        );
        let ab = insert_line(&one, "a::register(registry);").unwrap();
        let abc = insert_line(&ab, "c::register(registry);").unwrap();
        let other_order = insert_line(
            &insert_line(
                &insert_line(FILE, "c::register(registry);").unwrap(),
                "a::register(registry);",
            )
            .unwrap(),
            "b::register(registry);",
        )
        .unwrap();
        assert_eq!(abc, other_order);
        assert!(abc.contains("begin\n    a::register(registry);\n    b::register(registry);\n    c::register(registry);\n    // apply-skill: end"), "{abc}");
        assert_eq!(remove_line(&abc, "c::register(registry);").unwrap(), ab);
        assert_eq!(
            remove_line(
                &remove_line(&ab, "a::register(registry);").unwrap(),
                "b::register(registry);"
            )
            .unwrap(),
            FILE
        );
        // Not in the block: nothing to take out.
        assert_eq!(remove_line(FILE, "a::register(registry);").unwrap(), FILE);
    }

    #[test]
    fn the_block_must_be_there_once_and_the_line_not_yet() {
        let line = "a::register(registry);";
        let err = insert_line("fn f() {}\n", line).unwrap_err();
        assert!(
            err.contains("no line containing `apply-skill: begin`"),
            "{err}"
        );
        let err = insert_line("// apply-skill: begin\n", line).unwrap_err();
        assert!(
            err.contains("no line containing `apply-skill: end`"),
            "{err}"
        );
        let twice = format!("{FILE}{FILE}");
        let err = insert_line(&twice, line).unwrap_err();
        assert!(
            err.contains("2 lines contain `apply-skill: begin` (lines 2, 6)"),
            "{err}"
        );
        let err = insert_line("// apply-skill: end\n// apply-skill: begin\n", line).unwrap_err();
        assert!(err.contains("comes before"), "{err}");
        let err = remove_line("fn f() {}\n", line).unwrap_err();
        assert!(err.contains("no line containing"), "{err}");
        let there = insert_line(FILE, line).unwrap();
        let err = insert_line(&there, line).unwrap_err();
        assert!(
            err.contains("has the line `a::register(registry);` already (line 3)"),
            "{err}"
        );
        let outside = format!("{line}\n{FILE}");
        assert!(insert_line(&outside, line).is_err(), "anywhere in the file");
    }

    #[test]
    fn indentation_and_line_endings_follow_the_begin_line() {
        let crlf = "mod x;\r\n\t// apply-skill: begin\r\n\t// apply-skill: end\r\n";
        assert_eq!(
            insert_line(crlf, "x::go();").unwrap(),
            "mod x;\r\n\t// apply-skill: begin\r\n\tx::go();\r\n\t// apply-skill: end\r\n"
        );
        // The owner's lines in the block stay where they are.
        let owners = "// apply-skill: begin\nzz_mine();\n// apply-skill: end\n";
        assert_eq!(
            remove_line(&insert_line(owners, "aa();").unwrap(), "aa();").unwrap(),
            owners
        );
    }

    #[test]
    fn a_manifest_line_is_one_plain_line() {
        assert!(check_line("a::register(registry);").is_ok());
        for bad in ["", "  ", "a;\nb;", "a;\r", " a;", "a; // apply-skill: end"] {
            assert!(check_line(bad).is_err(), "{bad:?}");
        }
    }
}
