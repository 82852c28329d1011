//! `bench staging`: what a staged read-write grant costs the host per
//! invocation (the copy before the container, the comparison after it, no
//! changes) against `cp -a` of the same folder, interleaved in one run.
//!
//! The folder is a small project: 2,000 files of 16 KiB in 40 folders
//! (31 MiB), a link, and a `.git` with 200 objects.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pincer_core::beneath::identity_of;
use pincer_core::staging::{self, StageLimits};

use crate::{ms, percentile};

fn project(root: &Path) -> anyhow::Result<()> {
    let content = vec![b'x'; 16 * 1024];
    for folder in 0..40 {
        let dir = root.join(format!("src/module{folder}"));
        std::fs::create_dir_all(&dir)?;
        for file in 0..50 {
            std::fs::write(dir.join(format!("file{file}.rs")), &content)?;
        }
    }
    std::fs::create_dir_all(root.join(".git/objects/aa"))?;
    for object in 0..200 {
        std::fs::write(
            root.join(format!(".git/objects/aa/{object:038}")),
            &content[..512],
        )?;
    }
    std::os::unix::fs::symlink("src/module0/file0.rs", root.join("main.rs"))?;
    Ok(())
}

pub(crate) fn run(runs: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pincer-bench-staging-{}", std::process::id()));
    let real = dir.join("real");
    project(&real)?;
    let identity = identity_of(&real.canonicalize()?)?;
    let me = pincer_core::mounts::ContainerUser::effective();
    let owner = (me.uid, me.gid);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..runs + 2 {
        let started = Instant::now();
        let tree = dir.join("stage/tree");
        let manifest = staging::stage(
            &real,
            identity,
            &tree,
            owner,
            &|_| false,
            StageLimits::with_bytes(1 << 30),
        )?;
        let changes = staging::collect(&tree, &manifest, &|_| false, 1 << 30)?;
        let ours_time = started.elapsed();
        if !changes.is_empty() {
            bail!("an unchanged copy showed {} changes", changes.len());
        }
        staging::discard(&dir.join("stage"))?;

        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&real)
            .arg(dir.join("copy"))
            .status()
            .context("cannot run cp")?;
        let cp_time = started.elapsed();
        if !status.success() {
            bail!("cp -a failed: {status}");
        }
        std::fs::remove_dir_all(dir.join("copy"))?;
        // The first rounds warm the page cache; they are not counted.
        if round >= 2 {
            ours.push(ours_time);
            theirs.push(cp_time);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(&mut ours, &mut theirs);
    Ok(())
}

fn report(ours: &mut [Duration], theirs: &mut [Duration]) {
    let (ours_median, ours_p95) = (percentile(ours, 50), percentile(ours, 95));
    let (cp_median, cp_p95) = (percentile(theirs, 50), percentile(theirs, 95));
    println!(
        "{:<40} {:>10} {:>10}",
        "31 MiB, 2,200 files", "median", "p95"
    );
    println!(
        "{:<40} {:>8.1}ms {:>8.1}ms",
        "staged: copy, hash, compare (no changes)",
        ms(ours_median),
        ms(ours_p95)
    );
    println!(
        "{:<40} {:>8.1}ms {:>8.1}ms",
        "cp -a",
        ms(cp_median),
        ms(cp_p95)
    );
    println!(
        "{:<40} {:>10.2} {:>10.2}",
        "ratio (staged / cp -a)",
        ms(ours_median) / ms(cp_median),
        ms(ours_p95) / ms(cp_p95)
    );
}
