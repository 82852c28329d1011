//! `bench skills`: apply time of a small skill on a fork 0 and 500 commits
//! away from the skill's base, in the same run.

use std::time::{Duration, Instant};

use anyhow::bail;

/// Apply time of a small skill on a fork 0 and 500 commits away from the
/// skill's base, in the same run.
pub(crate) fn run(runs: usize) -> anyhow::Result<()> {
    use git2::{Repository, Signature};
    use pincer_skills::{ApplyOutcome, Engine};

    fn commit_all(repo: &Repository, message: &str) -> anyhow::Result<git2::Oid> {
        let mut index = repo.index()?;
        index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let signature = Signature::now("bench", "bench@pincer.invalid")?;
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        Ok(repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )?)
    }

    let measure = |divergence: usize, name: &str| -> anyhow::Result<Vec<Duration>> {
        let dir = tempfile_dir()?;
        let root = dir.as_path();
        let repo = Repository::init(root)?;
        for i in 0..50 {
            std::fs::create_dir_all(root.join("core/src"))?;
            let body: String = (0..200).map(|l| format!("fn f{i}_{l}() {{}}\n")).collect();
            std::fs::write(root.join(format!("core/src/m{i}.rs")), body)?;
        }
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"core\"]\n",
        )?;
        let base = commit_all(&repo, "upstream")?;
        let skill = root.join("skills/demo");
        std::fs::create_dir_all(skill.join("files/core/src"))?;
        for i in 0..3 {
            let mut body = std::fs::read_to_string(root.join(format!("core/src/m{i}.rs")))?;
            body.push_str("fn added_by_the_skill() {}\n");
            std::fs::write(skill.join(format!("files/core/src/m{i}.rs")), body)?;
        }
        std::fs::write(skill.join("files/core/src/demo.rs"), "pub fn demo() {}\n")?;
        std::fs::write(skill.join("SKILL.md"), "# demo\n")?;
        std::fs::write(
            skill.join("skill.toml"),
            format!(
                "name = \"demo\"\nversion = \"1.0.0\"\ndescription = \"bench\"\nbase = \"{base}\"\n\
                     adds = [\"core/src/demo.rs\"]\nmodifies = [\"core/src/m0.rs\", \"core/src/m1.rs\", \"core/src/m2.rs\"]\n"
            ),
        )?;
        // The same skill as a crate, linked: a dependency and a registry line.
        let linked = root.join("skills/linked");
        std::fs::create_dir_all(linked.join("src"))?;
        std::fs::create_dir_all(root.join("pincer/src"))?;
        std::fs::write(
            root.join("pincer/Cargo.toml"),
            "[package]\nname = \"pincer\"\n\n[dependencies]\n",
        )?;
        std::fs::write(
            root.join("pincer/src/skills.rs"),
            "pub(crate) fn register(registry: &mut Registry) {\n    // apply-skill: begin\n    // apply-skill: end\n}\n",
        )?;
        std::fs::write(
            linked.join("Cargo.toml"),
            "[package]\nname = \"pincer-skill-linked\"\n",
        )?;
        std::fs::write(linked.join("src/lib.rs"), "pub fn register() {}\n")?;
        std::fs::write(linked.join("SKILL.md"), "# linked\n")?;
        std::fs::write(
            linked.join("skill.toml"),
            "name = \"linked\"\nversion = \"1.0.0\"\ndescription = \"bench\"\n\
             [[crate]]\nmanifest = \"pincer/Cargo.toml\"\n\
             dependencies = { pincer-skill-linked = { path = \"../skills/linked\" } }\n\
             [[register]]\nfile = \"pincer/src/skills.rs\"\n\
             line = \"pincer_skill_linked::register(registry);\"\n",
        )?;
        commit_all(&repo, "add the skills")?;
        // The owner's divergence: commits editing the files the skill modifies (other lines) and others.
        for c in 0..divergence {
            let file = root.join(format!("core/src/m{}.rs", c % 50));
            let mut body = std::fs::read_to_string(&file)?;
            body = body.replacen(
                &format!("fn f{}_{}() {{}}", c % 50, c % 200),
                &format!("fn f{}_{}() {{ /* owner {c} */ }}", c % 50, c % 200),
                1,
            );
            std::fs::write(&file, body)?;
            commit_all(&repo, &format!("owner change {c}"))?;
        }
        let engine = Engine::open(root)?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let outcome = engine.apply(name, false)?;
            times.push(started.elapsed());
            let ApplyOutcome::Committed { from, branch, .. } = outcome else {
                bail!("the bench skill conflicted")
            };
            // Back to where we were, for the next run.
            repo.set_head(&from)?;
            repo.checkout_head(Some(
                git2::build::CheckoutBuilder::new()
                    .force()
                    .remove_untracked(true),
            ))?;
            repo.find_branch(&branch, git2::BranchType::Local)?
                .delete()?;
        }
        let _ = std::fs::remove_dir_all(root);
        Ok(times)
    };
    println!("bench skills: apply-skill on a 50-file fork, {runs} runs each (median)");
    println!(
        "{:<44} {:>10} {:>14} {:>8}",
        "", "at base", "500 commits", "ratio"
    );
    for (skill, what) in [
        ("linked", "a crate linked (dependency, registry line)"),
        ("demo", "3 files merged, 1 added"),
    ] {
        let mut fresh = measure(0, skill)?;
        let mut diverged = measure(500, skill)?;
        let (fresh, diverged) = (percentile(&mut fresh, 50), percentile(&mut diverged, 50));
        println!(
            "{what:<44} {:>8.1}ms {:>12.1}ms {:>8.2}",
            ms(fresh),
            ms(diverged),
            ms(diverged) / ms(fresh)
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "pincer-bench-skills-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * pct).div_ceil(100)).saturating_sub(1);
    samples.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
