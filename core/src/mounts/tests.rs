//! Unit tests of the mount layout: the per-group mounts on real folders (temp dirs), no engine.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn the_user_database_names_taken_ids_and_the_agents_id_is_free() {
    let root = ContainerUser { uid: 0, gid: 0 };
    assert_eq!(root.host_account().as_deref(), Some("user root"));
    assert_eq!(ContainerUser::UNPRIVILEGED.host_account(), None);
}

#[test]
fn read_only_binds_are_non_recursive_and_writable_ones_are_not() {
    let identity = Identity { dev: 1, ino: 2 };
    let ro = ValidatedMount {
        source: "/a".into(),
        target: "/b".into(),
        read_only: true,
        identity,
        within: None,
        staged: false,
    }
    .to_engine_mount();
    assert_eq!(ro.read_only, Some(true));
    assert_eq!(ro.bind_options.unwrap().non_recursive, Some(true));
    let rw = ValidatedMount {
        source: "/a".into(),
        target: "/b".into(),
        read_only: false,
        identity,
        within: None,
        staged: false,
    }
    .to_engine_mount();
    assert_eq!(rw.read_only, Some(false));
    assert_eq!(rw.bind_options.unwrap().non_recursive, Some(false));
}

fn plan<'a>(
    group: &'a GroupName,
    socket: &'a Path,
    project: Option<&'a Path>,
    policy: &'a MountPolicy,
) -> MountPlan<'a> {
    MountPlan {
        group,
        user: ContainerUser::for_this_host(),
        host_socket: socket,
        project,
        extra: &[],
        policy,
        home: None,
        staging: socket,
        stage_limits: crate::staging::StageLimits::with_bytes(1 << 20),
    }
}

fn no_policy(root: &Path) -> MountPolicy {
    MountPolicy::load(&HostFacts {
        home: None,
        config_dir: root.join("config"),
        data_dir: root.join("home"),
        engine_sockets: Vec::new(),
    })
    .unwrap()
}

#[test]
fn invocation_mounts_create_private_group_folders() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    let group = GroupName::new("family").unwrap();
    let policy = no_policy(root.path());
    let mounts = invocation_mounts(&paths, &plan(&group, &socket, None, &policy))
        .unwrap()
        .mounts;
    let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
    assert_eq!(
        targets,
        [
            (GROUP_TARGET, false),
            (SESSION_TARGET, false),
            (GLOBAL_TARGET, true),
            (pincer_protocol::HOST_SOCKET_PATH, true)
        ]
    );
    let meta = std::fs::metadata(paths.group_dir(&group)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), ContainerUser::for_this_host().uid);
    assert!(mounts[0].source().is_absolute());
}

#[test]
fn main_gets_the_project_with_secrets_shadowed_and_others_do_not() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    let project = root.path().join("project");
    for dir in [
        "src",
        "deploy/.ssh",
        "target/x",
        "node_modules/m",
        "config",
        ".git",
        "envs/prod",
    ] {
        std::fs::create_dir_all(project.join(dir)).unwrap();
    }
    for file in [
        ".env",
        "src/main.rs",
        "src/.env.local",
        "deploy/credentials.json",
        "target/x/.env",
        "node_modules/m/.env",
        ".git/config",
        "config/prod",
        "envs/prod/settings",
    ] {
        std::fs::write(project.join(file), "x").unwrap();
    }
    // A secret's name on a link: what it leads to is covered; a link out
    // of the project dangles in the container and needs no cover.
    std::os::unix::fs::symlink("config/prod", project.join(".env.production")).unwrap();
    std::os::unix::fs::symlink(&socket, project.join("src/.secret")).unwrap();
    // A chain of links is followed as the container follows it; a loop is nothing.
    std::os::unix::fs::symlink("prod", project.join("envs/current")).unwrap();
    std::os::unix::fs::symlink("envs/current/settings", project.join(".env.chain")).unwrap();
    std::os::unix::fs::symlink("b", project.join("a")).unwrap();
    std::os::unix::fs::symlink("a", project.join("b")).unwrap();
    std::os::unix::fs::symlink("a", project.join(".env.loop")).unwrap();
    // An absolute link is read as the container reads it.
    std::os::unix::fs::symlink(
        "/workspace/project/src/main.rs",
        project.join("src/.env.abs"),
    )
    .unwrap();
    let policy = no_policy(root.path());
    let main = GroupName::main();
    let mounts = invocation_mounts(&paths, &plan(&main, &socket, Some(&project), &policy))
        .unwrap()
        .mounts;
    let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
    assert_eq!(
        targets,
        [
            (GROUP_TARGET, false),
            (SESSION_TARGET, false),
            (GLOBAL_TARGET, false),
            (PROJECT_TARGET, true),
            ("/workspace/project/.env", true),
            ("/workspace/project/.git/config", true),
            ("/workspace/project/config/prod", true),
            ("/workspace/project/deploy/.ssh", true),
            ("/workspace/project/deploy/credentials.json", true),
            ("/workspace/project/envs/prod/settings", true),
            ("/workspace/project/node_modules/m/.env", true),
            ("/workspace/project/src/.env.local", true),
            ("/workspace/project/src/main.rs", true),
            ("/workspace/project/target/x/.env", true),
            (pincer_protocol::HOST_SOCKET_PATH, true)
        ]
    );
    // The shadows are empty.
    assert_eq!(std::fs::metadata(mounts[4].source()).unwrap().len(), 0);
    assert_eq!(std::fs::metadata(mounts[5].source()).unwrap().len(), 0);
    assert!(mounts[7].source().is_dir());
    assert_eq!(std::fs::read_dir(mounts[7].source()).unwrap().count(), 0);

    let family = GroupName::new("family").unwrap();
    let mounts = invocation_mounts(&paths, &plan(&family, &socket, Some(&project), &policy))
        .unwrap()
        .mounts;
    assert!(
        mounts
            .iter()
            .all(|m| !m.target().starts_with(PROJECT_TARGET))
    );
}

#[test]
fn a_project_holding_pincers_own_state_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    std::fs::create_dir_all(root.path().join("config")).unwrap();
    let policy = no_policy(root.path());
    let main = GroupName::main();
    // The folder that holds the config folder (as `~` would).
    let err = invocation_mounts(&paths, &plan(&main, &socket, Some(root.path()), &policy))
        .unwrap_err()
        .to_string();
    assert!(err.contains("protected path"), "{err}");
    assert!(err.contains("config"), "{err}");
}

#[test]
fn a_granted_folder_gets_its_secrets_shadowed_too() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    let code = root.path().join("code");
    std::fs::create_dir_all(code.join("app")).unwrap();
    std::fs::write(code.join("app/.env"), "TOKEN=x").unwrap();
    std::fs::write(code.join("app/main.py"), "print()").unwrap();
    let facts = HostFacts {
        home: None,
        config_dir: root.path().join("config"),
        data_dir: root.path().join("home"),
        engine_sockets: Vec::new(),
    };
    let policy = MountPolicy::parse(
        &format!(r#"{{"allowed_roots": [{{"path": "{}"}}]}}"#, code.display()),
        Path::new("allowlist.json"),
        &facts,
    )
    .unwrap();
    let main = GroupName::main();
    let extra = [MountRequest {
        host_path: code.display().to_string(),
        container_name: None,
        read_write: false,
    }];
    let mounts = invocation_mounts(
        &paths,
        &MountPlan {
            extra: &extra,
            ..plan(&main, &socket, None, &policy)
        },
    )
    .unwrap()
    .mounts;
    let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
    assert_eq!(
        targets[3..],
        [
            ("/workspace/extra/code", true),
            ("/workspace/extra/code/app/.env", true),
            (pincer_protocol::HOST_SOCKET_PATH, true)
        ]
    );
    assert_eq!(std::fs::metadata(mounts[4].source()).unwrap().len(), 0);
}

#[test]
fn a_wide_folder_is_scanned_and_one_nested_too_deep_is_left_out() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    let (wide, deep) = (root.path().join("wide"), root.path().join("deep"));
    for i in 0..1100 {
        std::fs::create_dir_all(wide.join(format!("{i}"))).unwrap();
    }
    std::fs::write(wide.join("1099/.env"), "x").unwrap();
    let mut nested = deep.clone();
    for _ in 0..=crate::beneath::MAX_DEPTH {
        nested.push("d");
    }
    std::fs::create_dir_all(&nested).unwrap();
    let facts = HostFacts {
        home: None,
        config_dir: root.path().join("config"),
        data_dir: root.path().join("home"),
        engine_sockets: Vec::new(),
    };
    let allow = format!(
        r#"{{"allowed_roots": [{{"path": "{}"}}, {{"path": "{}"}}]}}"#,
        wide.display(),
        deep.display()
    );
    let policy = MountPolicy::parse(&allow, Path::new("allowlist.json"), &facts).unwrap();
    let request = |path: &Path| MountRequest {
        host_path: path.display().to_string(),
        container_name: None,
        read_write: false,
    };
    let extra = [request(&wide), request(&deep)];
    let main = GroupName::main();
    let mounts = invocation_mounts(
        &paths,
        &MountPlan {
            extra: &extra,
            ..plan(&main, &socket, None, &policy)
        },
    )
    .unwrap();
    let targets: Vec<_> = mounts.mounts.iter().map(|m| m.target()).collect();
    assert_eq!(
        targets[3..],
        [
            "/workspace/extra/wide",
            "/workspace/extra/wide/1099/.env",
            pincer_protocol::HOST_SOCKET_PATH
        ]
    );
    assert_eq!(mounts.left_out.len(), 1);
    assert!(
        mounts.left_out[0].contains("too deep"),
        "{:?}",
        mounts.left_out
    );
}

#[test]
fn a_staged_grant_mounts_a_copy_and_one_too_large_to_copy_is_left_out() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    let socket = root.path().join("sock");
    std::fs::write(&socket, "").unwrap();
    let (site, big) = (root.path().join("site"), root.path().join("big"));
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(site.join("index.html"), "home").unwrap();
    std::fs::write(site.join(".env"), "SECRET").unwrap();
    std::fs::write(big.join("blob"), vec![0u8; 4096]).unwrap();
    let facts = HostFacts {
        home: None,
        config_dir: root.path().join("config"),
        data_dir: root.path().join("home"),
        engine_sockets: Vec::new(),
    };
    let allow = format!(
        r#"{{"allowed_roots": [{{"path": "{}", "allow_read_write": true}}]}}"#,
        root.path().display()
    );
    let policy = MountPolicy::parse(&allow, Path::new("allowlist.json"), &facts).unwrap();
    let request = |path: &Path| MountRequest {
        host_path: path.display().to_string(),
        container_name: None,
        read_write: true,
    };
    let extra = [request(&site), request(&big)];
    let staging = root.path().join("staging/inv");
    let main = GroupName::main();
    let mounts = invocation_mounts(
        &paths,
        &MountPlan {
            extra: &extra,
            staging: &staging,
            stage_limits: crate::staging::StageLimits::with_bytes(1024),
            ..plan(&main, &socket, None, &policy)
        },
    )
    .unwrap();
    let site_mount = mounts
        .mounts
        .iter()
        .find(|m| m.target() == "/workspace/extra/site")
        .unwrap();
    assert!(!site_mount.read_only() && site_mount.staged());
    assert_eq!(
        site_mount.source(),
        staging.canonicalize().unwrap().join("0/tree")
    );
    assert!(site_mount.source().join("index.html").is_file());
    assert!(!site_mount.source().join(".env").exists());
    assert_eq!(mounts.staged.len(), 1);
    assert_eq!(mounts.staged[0].real, site.canonicalize().unwrap());
    assert!(
        mounts
            .mounts
            .iter()
            .all(|m| m.source() != site.canonicalize().unwrap())
    );
    // Too large to copy: left out, never mounted directly instead.
    assert!(
        mounts
            .mounts
            .iter()
            .all(|m| m.target() != "/workspace/extra/big")
    );
    assert_eq!(mounts.left_out.len(), 1);
    assert!(
        mounts.left_out[0].contains("staged_copy_bytes"),
        "{:?}",
        mounts.left_out
    );
    assert!(!staging.join("1").exists());
}
