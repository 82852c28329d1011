//! The body of the `mount_path` target (see `fuzz_targets/mount_path.rs`).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pincer_core::mounts::{HostFacts, MountPolicy, MountRequest};

struct World {
    root: PathBuf,
    facts: HostFacts,
    policy: MountPolicy,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let root = crate::scratch_dir("mount_path");
        for dir in [
            "home/projects/app/.ssh",
            "home/projects/ro",
            "home/.aws",
            "outside",
            "config",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("home/projects/app/.env"), "x").unwrap();
        let _ = symlink(root.join("outside"), root.join("home/projects/out"));
        let _ = symlink(root.join("home/.aws"), root.join("home/projects/aws"));
        let _ = symlink("..", root.join("home/projects/up"));
        let facts = HostFacts {
            home: Some(root.join("home")),
            config_dir: root.join("config"),
            data_dir: root.join("data"),
            engine_sockets: vec![],
        };
        let text = r#"{"allowed_roots": [
            {"path": "~/projects", "allow_read_write": true},
            {"path": "~/projects/ro"}], "blocked_patterns": ["secret-stuff"]}"#;
        let policy = MountPolicy::parse(text, Path::new("fuzz.json"), &facts).unwrap();
        World {
            root,
            facts,
            policy,
        }
    })
}

/// Asks for the mount `data` names (`path`, or `path\ncontainer name`), as
/// main and as another group.
pub fn fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let world = world();
    let (path, name) = match text.split_once('\n') {
        Some((path, name)) => (path, Some(name.to_owned())),
        None => (text, None),
    };
    let request = MountRequest {
        host_path: path.to_owned(),
        container_name: name,
        read_write: true,
    };
    for is_main in [true, false] {
        let Ok(mount) = world
            .policy
            .check(&request, is_main, world.facts.home.as_deref())
        else {
            continue;
        };
        let source = mount.source();
        assert!(source.is_absolute());
        assert_eq!(Some(source.to_owned()), source.canonicalize().ok());
        assert!(source.starts_with(world.root.join("home/projects").canonicalize().unwrap()));
        assert!(world.policy.blocked_name_in(source).is_none());
        assert!(mount.target().starts_with("/workspace/extra/"));
        assert!(!mount.target().split('/').any(|part| part == ".."));
        if !is_main {
            assert!(mount.read_only());
        }
        if source.starts_with(world.root.join("home/projects/ro").canonicalize().unwrap()) {
            assert!(mount.read_only());
        }
    }
}
