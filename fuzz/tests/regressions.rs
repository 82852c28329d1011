//! Replays the saved inputs: every file under `regressions/<target>/` (the
//! crashes the fuzzers found, kept once fixed) and `seeds/<target>/` (the
//! starting corpus) goes through the target's body, as the fuzzer ran it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The inputs under `folder/<target>/`, with their target; dotfiles
/// (`.gitkeep`) are not inputs.
fn inputs(folder: &str) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(targets) = std::fs::read_dir(root().join(folder)) else {
        return found;
    };
    for target in targets {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            pincer_fuzz::TARGETS.contains(&name.as_str()),
            "{folder}/{name} is named after no fuzz target"
        );
        for input in std::fs::read_dir(&target).unwrap() {
            let input = input.unwrap().path();
            if !input
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with('.')
            {
                found.push((name.clone(), input));
            }
        }
    }
    found.sort();
    found
}

fn replay(folder: &str) {
    let mut failed = Vec::new();
    let inputs = inputs(folder);
    for (target, input) in &inputs {
        let data = std::fs::read(input).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            assert!(pincer_fuzz::run(target, &data))
        }));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            let name = input.strip_prefix(root()).unwrap().display();
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} failing inputs:\n{}",
        failed.len(),
        failed.join("\n")
    );
    eprintln!("{folder}: {} inputs replayed", inputs.len());
}

#[test]
fn saved_crashes_no_longer_crash() {
    replay("regressions");
}

#[test]
fn seeds_pass() {
    replay("seeds");
}

/// Each target has its `fuzz_targets/<name>.rs`, and a `regressions/<name>/`
/// folder for the crashes to come.
#[test]
fn every_target_has_its_files() {
    for target in pincer_fuzz::TARGETS {
        for path in [
            format!("fuzz_targets/{target}.rs"),
            format!("regressions/{target}"),
        ] {
            assert!(root().join(&path).exists(), "{path} is missing");
        }
    }
}
