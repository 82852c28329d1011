//! Staging on real folders (temp dirs): copy, compare, conflicts, apply.

use super::*;
use std::os::unix::fs::symlink;

struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        for dir in ["src/old", ".git/hooks", "docs"] {
            std::fs::create_dir_all(real.join(dir)).unwrap();
        }
        std::fs::write(real.join("README.md"), "hello\n").unwrap();
        std::fs::write(real.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(real.join("src/old/a.txt"), "a\n").unwrap();
        std::fs::write(real.join("docs/notes.txt"), "notes\n").unwrap();
        std::fs::write(real.join(".env"), "SECRET=1\n").unwrap();
        std::fs::write(real.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        symlink("README.md", real.join("link")).unwrap();
        Self { root }
    }

    fn real(&self) -> PathBuf {
        self.root.path().join("real")
    }

    fn tree(&self) -> PathBuf {
        self.root.path().join("stage/tree")
    }

    fn stage(&self, limits: StageLimits) -> Result<Manifest, StagingError> {
        let identity = crate::beneath::identity_of(&self.real()).unwrap();
        let me = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        stage(
            &self.real(),
            identity,
            &self.tree(),
            me,
            &|p| self.secret(p),
            limits,
        )
    }

    fn collect(&self, manifest: &Manifest) -> Vec<Change> {
        collect(&self.tree(), manifest, &|p| self.secret(p), 1 << 20).unwrap()
    }

    /// What the mount policy would call a secret, as far as these tests go.
    fn secret(&self, path: &str) -> bool {
        path.split('/').any(|part| part.contains(".env"))
    }
}

fn summary(changes: &[Change]) -> Vec<(String, ChangeKind, bool)> {
    changes
        .iter()
        .map(|c| (c.path.clone(), c.kind, c.refused.is_some()))
        .collect()
}

#[test]
fn the_copy_holds_everything_but_secrets_and_links_stay_links() {
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    let tree = f.tree();
    assert_eq!(
        std::fs::read_to_string(tree.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert!(!tree.join(".env").exists(), "a secret is never copied");
    assert_eq!(manifest.withheld, 1);
    assert_eq!(
        std::fs::read_link(tree.join("link")).unwrap(),
        Path::new("README.md")
    );
    assert!(tree.join(".git/HEAD").is_file());
    assert_eq!(
        manifest.entries.keys().collect::<Vec<_>>(),
        [
            ".git/HEAD",
            "README.md",
            "docs/notes.txt",
            "link",
            "src/main.rs",
            "src/old/a.txt"
        ]
    );
    // Nothing changed yet.
    assert_eq!(f.collect(&manifest), []);
}

#[test]
fn new_content_past_the_limit_is_refused_before_it_is_read() {
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    // A sparse terabyte: no blocks, all length.
    let file = std::fs::File::create(f.tree().join("huge")).unwrap();
    file.set_len(1 << 40).unwrap();
    let err = collect(&f.tree(), &manifest, &|p| f.secret(p), 1 << 20).unwrap_err();
    assert!(matches!(err, StagingError::TooLarge { .. }), "{err}");
    std::fs::remove_file(f.tree().join("huge")).unwrap();
    std::fs::write(f.tree().join("two\nlines"), "x").unwrap();
    let changes = f.collect(&manifest);
    assert_eq!(
        changes[0].refused.as_deref(),
        Some("its name has control characters")
    );
}

#[test]
fn a_folder_larger_than_the_limit_is_not_staged() {
    let f = Fixture::new();
    let err = f.stage(StageLimits::with_bytes(10)).unwrap_err();
    assert!(matches!(err, StagingError::TooLarge { .. }), "{err}");
    // The caller discards a copy that failed (each invocation's is fresh).
    discard(&f.tree()).unwrap();
    let err = f
        .stage(StageLimits {
            bytes: 1 << 20,
            entries: 3,
        })
        .unwrap_err();
    assert!(err.to_string().contains("staged_copy_bytes"), "{err}");
}

#[test]
fn additions_edits_deletions_and_what_is_never_applied_are_told_apart() {
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    let tree = f.tree();
    std::fs::write(tree.join("README.md"), "hello, edited\n").unwrap();
    std::fs::write(tree.join("new.txt"), "new\n").unwrap();
    std::fs::remove_dir_all(tree.join("src/old")).unwrap();
    std::fs::remove_file(tree.join("docs/notes.txt")).unwrap();
    std::fs::write(tree.join(".git/hooks/pre-commit"), "#!/bin/sh\nevil\n").unwrap();
    std::fs::write(tree.join("prod.env"), "X=1\n").unwrap();
    symlink("/etc/shadow", tree.join("escape")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        tree.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let changes = f.collect(&manifest);
    assert_eq!(
        summary(&changes),
        [
            ("README.md".into(), ChangeKind::Changed, false),
            ("docs/notes.txt".into(), ChangeKind::Deleted, false),
            ("escape".into(), ChangeKind::Added, true),
            ("new.txt".into(), ChangeKind::Added, false),
            ("pipe".into(), ChangeKind::Added, true),
            ("prod.env".into(), ChangeKind::Added, true),
            ("src/old/a.txt".into(), ChangeKind::Deleted, false),
        ]
    );
    let refused: Vec<&Change> = changes.iter().filter(|c| c.refused.is_some()).collect();
    let err = apply(&f.real(), &manifest, &tree, &refused[..1]).unwrap_err();
    assert!(err.to_string().contains("links are never applied"), "{err}");
    assert!(!f.real().join("escape").exists());
}

#[test]
fn a_partial_accept_applies_only_what_was_named_and_keeps_the_owners_edits() {
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    let (tree, real) = (f.tree(), f.real());
    std::fs::write(tree.join("README.md"), "agent's\n").unwrap();
    std::fs::write(tree.join("src/main.rs"), "fn main() { agent() }\n").unwrap();
    std::fs::create_dir_all(tree.join("new/deep")).unwrap();
    std::fs::write(tree.join("new/deep/file.txt"), "deep\n").unwrap();
    std::fs::remove_dir_all(tree.join("src/old")).unwrap();
    // The owner edits README meanwhile.
    std::fs::write(real.join("README.md"), "owner's\n").unwrap();
    let changes = f.collect(&manifest);
    let all: Vec<&Change> = changes.iter().collect();
    let found = conflicts(&real, &manifest, &all).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "README.md");
    assert!(
        found[0].now.contains("a file of 8 bytes"),
        "{}",
        found[0].now
    );

    let chosen: Vec<&Change> = changes
        .iter()
        .filter(|c| c.path.starts_with("new/") || c.path.starts_with("src/old/"))
        .collect();
    assert_eq!(conflicts(&real, &manifest, &chosen).unwrap(), []);
    apply(&real, &manifest, &tree, &chosen).unwrap();
    assert_eq!(
        std::fs::read_to_string(real.join("new/deep/file.txt")).unwrap(),
        "deep\n"
    );
    assert!(
        !real.join("src/old").exists(),
        "an emptied folder the copy lacks goes"
    );
    assert_eq!(
        std::fs::read_to_string(real.join("README.md")).unwrap(),
        "owner's\n"
    );
    assert_eq!(
        std::fs::read_to_string(real.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert!(real.join(".env").exists());

    // Applied already (an accept that stopped half way): no conflict, nothing changes.
    assert_eq!(conflicts(&real, &manifest, &chosen).unwrap(), []);
    apply(&real, &manifest, &tree, &chosen).unwrap();
    assert_eq!(
        std::fs::read_to_string(real.join("new/deep/file.txt")).unwrap(),
        "deep\n"
    );

    // A file changed in the copy after it was listed is not applied.
    let main_rs: Vec<&Change> = changes.iter().filter(|c| c.path == "src/main.rs").collect();
    std::fs::write(tree.join("src/main.rs"), "fn main() { other() }\n").unwrap();
    let err = apply(&real, &manifest, &tree, &main_rs).unwrap_err();
    assert!(
        err.to_string().contains("not the one that was listed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(real.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
}

#[test]
fn a_link_swapped_into_the_real_folder_is_a_conflict_not_a_way_out() {
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    let (tree, real) = (f.tree(), f.real());
    std::fs::write(tree.join("docs/new.txt"), "x\n").unwrap();
    let outside = f.root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(real.join("docs"), f.root.path().join("docs-moved")).unwrap();
    symlink(&outside, real.join("docs")).unwrap();
    let changes = f.collect(&manifest);
    let all: Vec<&Change> = changes.iter().collect();
    let found = conflicts(&real, &manifest, &all).unwrap();
    assert!(
        found
            .iter()
            .any(|c| c.path == "docs/new.txt" && c.now.contains("in the way")),
        "{found:?}"
    );
    let added: Vec<&Change> = changes
        .iter()
        .filter(|c| c.path == "docs/new.txt")
        .collect();
    assert!(apply(&real, &manifest, &tree, &added).is_err());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn permission_bits_are_the_hosts_and_a_replaced_folder_gets_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let manifest = f.stage(StageLimits::with_bytes(1 << 20)).unwrap();
    let (tree, real) = (f.tree(), f.real());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    std::fs::set_permissions(
        real.join("README.md"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(tree.join("README.md"), "edited\n").unwrap();
    std::fs::set_permissions(
        tree.join("README.md"),
        std::fs::Permissions::from_mode(0o4777),
    )
    .unwrap();
    std::fs::create_dir_all(tree.join("tools")).unwrap();
    std::fs::set_permissions(tree.join("tools"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(tree.join("tools/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        tree.join("tools/run.sh"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let changes = f.collect(&manifest);
    let all: Vec<&Change> = changes.iter().collect();
    apply(&real, &manifest, &tree, &all).unwrap();
    assert_eq!(
        mode(&real.join("README.md")),
        0o640,
        "a changed file keeps the host's bits"
    );
    assert_eq!(
        mode(&real.join("tools/run.sh")),
        0o644,
        "a new file is 0644"
    );
    assert_eq!(
        mode(&real.join("tools")) & 0o022,
        0,
        "a new folder is not world-writable"
    );

    // The granted folder replaced by another at its path: nothing is written there.
    std::fs::rename(&real, f.root.path().join("moved")).unwrap();
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(tree.join("later.txt"), "later\n").unwrap();
    let changes = f.collect(&manifest);
    let later: Vec<&Change> = changes.iter().filter(|c| c.path == "later.txt").collect();
    let err = apply(&real, &manifest, &tree, &later).unwrap_err();
    assert!(matches!(err, StagingError::Swapped(_)), "{err}");
    assert!(conflicts(&real, &manifest, &later).is_err());
    assert!(!real.join("later.txt").exists());
}
