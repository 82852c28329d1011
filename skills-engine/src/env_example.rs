//! `.env.example`: the environment variables of each applied skill, in a
//! block of its own that names the skill, blocks sorted by skill name (so
//! two skills give the same file whichever is applied first). Lines the
//! engine did not write are never changed or taken out.

use crate::names::valid_name;

/// The file, relative to the repository's root.
pub const ENV_EXAMPLE: &str = ".env.example";

/// The first line of a skill's block.
fn header(name: &str) -> String {
    format!("# skill {name} (see skills/{name}/SKILL.md)")
}

/// The skill whose block `line` starts, if it is a block's first line.
fn header_name(line: &str) -> Option<&str> {
    let line = content(line);
    let name = line.strip_prefix("# skill ")?.split_once(' ')?.0;
    (valid_name(name) && line == header(name)).then_some(name)
}

/// A line without its line ending.
fn content(line: &str) -> &str {
    line.trim_end_matches('\n').trim_end_matches('\r')
}

/// `text` with the block of `skill` (a line `NAME=` for each variable, in
/// order) before the block of the first skill named after it, or at the end
/// after a blank line. An error if the file has a block for that skill
/// already.
pub(crate) fn add_block(text: &str, skill: &str, variables: &[String]) -> Result<String, String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if lines.iter().any(|line| header_name(line) == Some(skill)) {
        return Err(format!(
            "it has a block for skill {skill} already (`{}`); take it out first",
            header(skill)
        ));
    }
    let block = std::iter::once(format!("{}\n", header(skill)))
        .chain(variables.iter().map(|name| format!("{name}=\n")));
    match lines
        .iter()
        .position(|line| header_name(line).is_some_and(|other| other > skill))
    {
        Some(at) => {
            let block: Vec<String> = block.chain(std::iter::once("\n".to_owned())).collect();
            lines.splice(at..at, block);
        }
        None => {
            if let Some(last) = lines.last_mut() {
                if !last.ends_with('\n') {
                    last.push('\n');
                }
                lines.push("\n".to_owned());
            }
            lines.extend(block);
        }
    }
    Ok(lines.concat())
}

/// `text` without the lines of the block of `skill` that are as the engine
/// wrote them: its first line and a line `NAME=` for each of `variables`,
/// up to the next blank line or block. Other lines there (the owner's, or a
/// variable the owner gave a value) stay where they are; when none do, the
/// blank line that separated the block goes too. No such block: `text`.
pub(crate) fn remove_block(text: &str, skill: &str, variables: &[String]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(start) = lines
        .iter()
        .position(|line| header_name(line) == Some(skill))
    else {
        return text.to_owned();
    };
    let end = lines[start + 1..]
        .iter()
        .position(|line| content(line).trim().is_empty() || header_name(line).is_some())
        .map_or(lines.len(), |at| start + 1 + at);
    let mut unwritten: Vec<&str> = variables.iter().map(String::as_str).collect();
    let kept: Vec<&str> = lines[start + 1..end]
        .iter()
        .copied()
        .filter(|line| {
            let written = content(line)
                .strip_suffix('=')
                .and_then(|name| unwritten.iter().position(|variable| *variable == name));
            match written {
                Some(at) => {
                    unwritten.remove(at);
                    false
                }
                None => true,
            }
        })
        .collect();
    let (mut before, mut after) = (&lines[..start], &lines[end..]);
    if kept.is_empty() {
        // The separator `add_block` wrote: before a block at the end, after
        // one inserted before another.
        if after.is_empty() && before.last() == Some(&"\n") {
            before = &before[..before.len() - 1];
        } else if after.first() == Some(&"\n") {
            after = &after[1..];
        }
    }
    [before, &kept, after].concat().concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::valid_variable;

    fn vars(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn blocks_go_in_name_order_and_come_out_as_they_went_in() {
        let owner = "# the owner's\nPORT=8080";
        let (a, b, c) = (vars(&["A1", "A2"]), vars(&["B1"]), vars(&["C1"]));
        let with_b = add_block(owner, "bee", &b).unwrap();
        assert_eq!(
            with_b,
            "# the owner's\nPORT=8080\n\n# skill bee (see skills/bee/SKILL.md)\nB1=\n"
        );
        let with_ab = add_block(&with_b, "ant", &a).unwrap();
        let with_abc = add_block(&with_ab, "cat", &c).unwrap();
        let other_order = add_block(
            &add_block(&add_block(owner, "cat", &c).unwrap(), "ant", &a).unwrap(),
            "bee",
            &b,
        )
        .unwrap();
        assert_eq!(with_abc, other_order);
        assert_eq!(
            with_abc,
            "# the owner's\nPORT=8080\n\n\
             # skill ant (see skills/ant/SKILL.md)\nA1=\nA2=\n\n\
             # skill bee (see skills/bee/SKILL.md)\nB1=\n\n\
             # skill cat (see skills/cat/SKILL.md)\nC1=\n"
        );
        // Each removal gives the file as if that skill had never been added.
        assert_eq!(remove_block(&with_abc, "cat", &c), with_ab);
        assert_eq!(
            remove_block(&with_abc, "ant", &a),
            add_block(&add_block(owner, "bee", &b).unwrap(), "cat", &c).unwrap()
        );
        assert_eq!(remove_block(&with_ab, "ant", &a), with_b);
        assert_eq!(
            remove_block(&with_b, "bee", &b),
            "# the owner's\nPORT=8080\n"
        );
        // From nothing, back to nothing.
        let only = add_block("", "ant", &a).unwrap();
        assert_eq!(only, "# skill ant (see skills/ant/SKILL.md)\nA1=\nA2=\n");
        assert_eq!(remove_block(&only, "ant", &a), "");
        let two = add_block(&only, "bee", &b).unwrap();
        assert_eq!(
            remove_block(&two, "ant", &a),
            add_block("", "bee", &b).unwrap()
        );
    }

    #[test]
    fn the_owners_lines_in_a_block_stay() {
        let text = "KEEP=1\n\n# skill ant (see skills/ant/SKILL.md)\nA1=\nA2=filled in\nMINE=\n\n# skill bee (see skills/bee/SKILL.md)\nB1=\n";
        assert_eq!(
            remove_block(text, "ant", &vars(&["A1", "A2"])),
            "KEEP=1\n\nA2=filled in\nMINE=\n\n# skill bee (see skills/bee/SKILL.md)\nB1=\n"
        );
        // No block: nothing changes; a block twice is refused.
        assert_eq!(remove_block(text, "cat", &vars(&["C1"])), text);
        let err = add_block(text, "bee", &vars(&["B1"])).unwrap_err();
        assert!(err.contains("a block for skill bee already"), "{err}");
        // A line that only looks like a header is the owner's.
        let look_alike = "# skill ant (see skills/other/SKILL.md)\nA1=\n";
        assert_eq!(remove_block(look_alike, "ant", &vars(&["A1"])), look_alike);
    }

    #[test]
    fn variable_names() {
        for good in ["A", "_X", "TELEGRAM_BOT_TOKEN", "a1"] {
            assert!(valid_variable(good), "{good}");
        }
        for bad in ["", "1A", "A B", "A=B", "A\nB", "A-B", "É"] {
            assert!(!valid_variable(bad), "{bad:?}");
        }
    }
}
