//! Unit tests of `beneath` on real folders (temp dirs): links refused, walks bounded.
use super::*;
use std::os::unix::fs::symlink;

fn setup() -> (tempfile::TempDir, Folder) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("agent/sub")).unwrap();
    std::fs::create_dir_all(root.path().join("canary")).unwrap();
    std::fs::write(root.path().join("canary/keep"), "x").unwrap();
    let folder = Folder::open(&root.path().join("agent")).unwrap();
    (root, folder)
}

#[test]
fn links_on_the_way_are_errors_and_never_followed() {
    let (root, folder) = setup();
    symlink(root.path().join("canary"), root.path().join("agent/out")).unwrap();
    let err = folder.open_dir("out").unwrap_err();
    assert!(err.is_link(), "{err}");
    assert!(err.to_string().contains("a link is in the way"), "{err}");
    assert!(folder.open_dir("sub/../../canary").unwrap_err().is_link());
    assert!(folder.ensure_dir("out", 0o700).unwrap_err().is_link());
    // The folder itself must not be a link.
    assert!(
        Folder::open(&root.path().join("agent/out"))
            .unwrap_err()
            .is_link()
    );
}

#[test]
fn removal_and_chown_change_links_not_what_they_lead_to() {
    let (root, folder) = setup();
    symlink(
        root.path().join("canary"),
        root.path().join("agent/sub/out"),
    )
    .unwrap();
    symlink(root.path().join("canary/keep"), root.path().join("agent/f")).unwrap();
    folder.chown_all(4242, 4242).unwrap();
    use std::os::unix::fs::MetadataExt;
    let canary = std::fs::metadata(root.path().join("canary/keep")).unwrap();
    assert_ne!(canary.uid(), 4242);
    assert_eq!(
        std::fs::symlink_metadata(root.path().join("agent/f"))
            .unwrap()
            .uid(),
        4242
    );
    folder.remove_all(OsStr::new("sub")).unwrap();
    folder.remove_all(OsStr::new("f")).unwrap();
    assert_eq!(folder.entries().unwrap(), []);
    assert!(root.path().join("canary/keep").exists());
}

#[test]
fn walks_hold_one_descriptor_per_level_and_refuse_past_the_depth_limit() {
    let (_root, folder) = setup();
    let nested = |top: &str, levels: usize| {
        let mut path = folder.path().join(top);
        for _ in 0..levels {
            path.push("d");
        }
        std::fs::create_dir_all(&path).unwrap();
    };
    for i in 0..1100 {
        std::fs::create_dir_all(folder.path().join(format!("wide/{i}"))).unwrap();
    }
    nested("deep", MAX_DEPTH - 1);
    folder.chown_all(4242, 4242).unwrap();
    folder.remove_all(OsStr::new("deep")).unwrap();
    folder.remove_all(OsStr::new("wide")).unwrap();
    nested("deeper", MAX_DEPTH + 1);
    let err = folder
        .remove_all(OsStr::new("deeper"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 256 folders deep"), "{err}");
    let err = folder.chown_all(4242, 4242).unwrap_err().to_string();
    assert!(err.contains("more than 256 folders deep"), "{err}");
}

#[test]
fn renames_never_replace() {
    let (_root, folder) = setup();
    let sub = folder.open_dir("sub").unwrap();
    std::fs::write(folder.path().join("a"), "a").unwrap();
    std::fs::write(folder.path().join("sub/a"), "b").unwrap();
    let err = folder
        .rename(OsStr::new("a"), &sub, OsStr::new("a"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    folder
        .rename(OsStr::new("a"), &sub, OsStr::new("c"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(folder.path().join("sub/c")).unwrap(),
        "a"
    );
}

#[test]
fn identities_tell_folders_apart_and_refuse_links() {
    let (root, folder) = setup();
    let agent = root.path().join("agent").canonicalize().unwrap();
    assert_eq!(identity_of(&agent).unwrap(), folder.identity().unwrap());
    assert_ne!(
        identity_of(&agent.join("sub")).unwrap(),
        folder.identity().unwrap()
    );
    symlink(root.path().join("canary"), agent.join("out")).unwrap();
    assert!(identity_of(&agent.join("out")).unwrap_err().is_link());
    assert_eq!(
        View::open(&agent)
            .unwrap()
            .identity(Path::new("sub"))
            .unwrap(),
        identity_of(&agent.join("sub")).unwrap()
    );
    assert!(
        View::open(&agent)
            .unwrap()
            .identity(Path::new("out"))
            .unwrap_err()
            .is_link()
    );
}
