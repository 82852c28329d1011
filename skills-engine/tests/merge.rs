//! The engine's file merge against `git merge-file`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use pincer_skills::merge3;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The engine's merge is `git merge-file`'s: same text, same verdict.
    #[test]
    fn merges_match_git_merge_file(
        base in proptest::collection::vec(0u8..6, 0..12),
        ours_edits in proptest::collection::vec((0usize..12, 0u8..9), 0..4),
        theirs_edits in proptest::collection::vec((0usize..12, 0u8..9), 0..4),
    ) {
        let render = |v: &[u8]| v.iter().map(|n| format!("line {n}\n")).collect::<String>();
        let edit = |edits: &[(usize, u8)]| {
            let mut v = base.clone();
            for (at, what) in edits {
                match what {
                    6 if !v.is_empty() => { v.remove(at % v.len()); }
                    7 => v.insert(at % (v.len() + 1), 100 + *what),
                    w => if !v.is_empty() { let len = v.len(); v[at % len] = 50 + *w; },
                }
            }
            v
        };
        let (base_text, ours, theirs) = (render(&base), render(&edit(&ours_edits)), render(&edit(&theirs_edits)));
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (o, b, t) = (write("ours", &ours), write("base", &base_text), write("theirs", &theirs));
        let git = Command::new("git")
            .args(["merge-file", "-p", "-L", "fork", "-L", "base", "-L", "skill"])
            .args([&o, &b, &t])
            .output()
            .unwrap();
        let code = git.status.code().unwrap();
        proptest::prop_assert!(code >= 0, "git merge-file failed");
        let ours_merge = merge3(base_text.as_bytes(), ours.as_bytes(), theirs.as_bytes(), "f").unwrap();
        proptest::prop_assert_eq!(String::from_utf8_lossy(&ours_merge.content), String::from_utf8_lossy(&git.stdout));
        proptest::prop_assert_eq!(ours_merge.conflicted, code > 0);
    }
}
