//! The engine profile's decisions, from the facts a Docker or Podman engine reports.

use bollard::models::{
    HostConfig, ResourcesUlimits, SystemInfo, SystemVersion, SystemVersionComponents,
};

use super::*;
use crate::sandbox::spec::Resources;

const RANGE: Option<IdRange> = Some(IdRange {
    uid: 2_000_000,
    gid: 3_000_000,
    count: 65_536,
});

fn version(components: &[&str]) -> SystemVersion {
    SystemVersion {
        components: Some(
            components
                .iter()
                .map(|name| SystemVersionComponents {
                    name: (*name).into(),
                    version: "1".into(),
                    details: None,
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn info(all: bool) -> SystemInfo {
    SystemInfo {
        default_runtime: Some("runc".into()),
        memory_limit: Some(true),
        swap_limit: Some(true),
        pids_limit: Some(all),
        cpu_cfs_quota: Some(true),
        ..Default::default()
    }
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "i".into(),
        command: None,
        user: ContainerUser::UNPRIVILEGED,
        mounts: Vec::new(),
        resources: Resources::default(),
        labels: Default::default(),
        working_dir: "/".into(),
        runtime: None,
    }
}

/// What an engine that kept every limit reports.
fn kept(spec: &ContainerSpec) -> HostConfig {
    let r = &spec.resources;
    HostConfig {
        memory: Some(r.memory_bytes),
        memory_swap: Some(r.memory_bytes),
        pids_limit: Some(r.pids),
        cpu_quota: Some(r.nano_cpus / 10_000),
        cpu_period: Some(100_000),
        ulimits: Some(
            ulimits(spec)
                .into_iter()
                .map(|u| ResourcesUlimits {
                    name: u.name.map(|n| format!("RLIMIT_{}", n.to_uppercase())),
                    ..u
                })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn podman_is_told_from_docker_by_its_components() {
    let docker = EngineProfile::read(
        &version(&["Engine", "containerd", "runc"]),
        &info(true),
        0,
        RANGE,
    );
    assert_eq!(docker.kind, EngineKind::Docker);
    assert_eq!(docker.userns_mode(ContainerUser::UNPRIVILEGED), None);
    let podman = EngineProfile::read(
        &version(&["Podman Engine", "Conmon"]),
        &info(true),
        0,
        RANGE,
    );
    assert_eq!((podman.kind, podman.rootless), (EngineKind::Podman, false));
    assert_eq!(
        podman.userns_mode(ContainerUser::UNPRIVILEGED).as_deref(),
        Some("auto:uidmapping=0:2000000:65531,gidmapping=0:3000000:65531")
    );
    assert_eq!(
        podman.host_user(ContainerUser::UNPRIVILEGED),
        ContainerUser {
            uid: 2_065_530,
            gid: 3_065_530
        }
    );
    assert_eq!(podman.missing_range(ContainerUser::UNPRIVILEGED), None);
    assert_eq!(
        docker.host_user(ContainerUser::UNPRIVILEGED),
        ContainerUser::UNPRIVILEGED
    );
    let rootless = EngineProfile::read(&version(&["Podman Engine"]), &info(true), 1000, RANGE);
    let me = ContainerUser {
        uid: 1000,
        gid: 1000,
    };
    assert_eq!(rootless.userns_mode(me).as_deref(), Some("keep-id"));
    assert_eq!(
        (rootless.host_user(me), rootless.missing_range(me)),
        (me, None)
    );
    let mut rootless_info = info(true);
    rootless_info.security_options = Some(vec![
        "name=seccomp,profile=default".into(),
        "name=rootless".into(),
    ]);
    assert!(EngineProfile::read(&version(&["Engine"]), &rootless_info, 1000, RANGE).rootless);
}

#[test]
fn an_engine_without_a_control_is_refused_naming_it_and_the_way_out() {
    let profile = EngineProfile::read(&version(&["Engine"]), &info(false), 0, RANGE);
    let err = profile.missing_controls().unwrap().to_string();
    assert!(
        err.contains("cannot enforce the container's pids limit"),
        "{err}"
    );
    assert!(err.contains("cgroup v2"), "{err}");
    assert!(
        EngineProfile::read(&version(&["Engine"]), &info(true), 0, RANGE)
            .missing_controls()
            .is_none()
    );
    // An engine that does not say is not taken to lack anything: the
    // container's own inspection decides then.
    assert!(
        EngineProfile::read(&version(&["Engine"]), &SystemInfo::default(), 0, RANGE)
            .missing_controls()
            .is_none()
    );
}

#[test]
fn a_container_that_lost_a_limit_is_refused_by_name() {
    let spec = spec();
    let profile = EngineProfile::read(&version(&["Podman Engine"]), &info(true), 1000, RANGE);
    check_created(&spec, Some(&kept(&spec)), &profile).unwrap();
    // What rootless Podman on cgroup v1 gives: the limits zeroed.
    let mut dropped = kept(&spec);
    dropped.memory = Some(0);
    dropped.pids_limit = Some(0);
    let err = check_created(&spec, Some(&dropped), &profile)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("memory (asked 1073741824, the container has none)"),
        "{err}"
    );
    assert!(err.contains("pids (asked 256"), "{err}");
    assert!(err.contains("cgroup v1 cannot limit"), "{err}");
    let mut soft = kept(&spec);
    soft.ulimits.as_mut().unwrap()[0].soft = Some(1);
    let err = check_created(&spec, Some(&soft), &profile)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rlimit nofile"), "{err}");
    let err = check_created(&spec, None, &profile)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cpu"), "{err}");
}

#[test]
fn id_maps_are_read_as_the_kernel_writes_them() {
    let map = parse_id_map("         0     200000      65530\n     65530      65530          1\n");
    assert_eq!(map, [(0, 200_000, 65_530), (65_530, 65_530, 1)]);
    assert!(parse_id_map("junk\n").is_empty());
}

#[test]
fn the_candidates_start_with_the_systems_engines_then_the_users() {
    let found = socket_candidates(1000, None);
    assert_eq!(found[0], PathBuf::from("/var/run/docker.sock"));
    assert_eq!(found[1], PathBuf::from("/run/podman/podman.sock"));
    assert_eq!(found[2], PathBuf::from("/run/user/1000/podman/podman.sock"));
    let found = socket_candidates(1000, Some("/tmp/xdg"));
    assert_eq!(found[3], PathBuf::from("/tmp/xdg/docker.sock"));
    // Root looks only at the system's sockets, whatever its environment says.
    assert_eq!(socket_candidates(0, Some("/tmp/xdg")), found[..2]);
    assert_eq!(
        EngineEndpoint::detect(Some("tcp://10.0.0.1:2375".into()), None).to_string(),
        "tcp://10.0.0.1:2375"
    );
}

#[test]
fn rootful_podman_without_pincers_range_is_refused_with_the_line_to_add() {
    let none = EngineProfile::read(&version(&["Podman Engine"]), &info(true), 0, None);
    let err = none
        .missing_range(ContainerUser::UNPRIVILEGED)
        .unwrap()
        .to_string();
    assert!(
        err.contains("the `pincer` range of /etc/subuid and /etc/subgid, and there is none"),
        "{err}"
    );
    assert!(
        err.contains("echo pincer:2000000:65536 | sudo tee -a /etc/subuid /etc/subgid"),
        "{err}"
    );
    let small = Some(IdRange {
        uid: 1,
        gid: 1,
        count: 1000,
    });
    let err = EngineProfile::read(&version(&["Podman Engine"]), &info(true), 0, small)
        .missing_range(ContainerUser::UNPRIVILEGED)
        .unwrap()
        .to_string();
    assert!(
        err.contains("has 1000 ids; the agent's uid 65530 needs 65531"),
        "{err}"
    );
    // Docker needs no range.
    let docker = EngineProfile::read(&version(&["Engine"]), &info(true), 0, None);
    assert_eq!(docker.missing_range(ContainerUser::UNPRIVILEGED), None);
}

#[test]
fn pincers_range_is_read_from_its_own_lines() {
    let subuid = "containers:200000:1000000\npincer:2000000:65536\n";
    let subgid = "# comment\npincer:3000000:70000\npincer:9:9\n";
    assert_eq!(
        IdRange::from_files(subuid, subgid),
        Some(IdRange {
            uid: 2_000_000,
            gid: 3_000_000,
            count: 65_536
        })
    );
    assert_eq!(IdRange::from_files("containers:1:2\n", subgid), None);
    assert_eq!(IdRange::from_files("pincer:x:1\n", subgid), None);
}

#[test]
fn on_podman_only_the_default_runtime_can_be_had() {
    let podman = EngineProfile::read(&version(&["Podman Engine"]), &info(true), 0, RANGE);
    podman.check_runtime(None).unwrap();
    podman.check_runtime(Some("runc")).unwrap();
    let err = podman.check_runtime(Some("runsc")).unwrap_err().to_string();
    assert!(
        err.contains("`runsc` was asked, and the container would run under `runc`"),
        "{err}"
    );
    assert!(err.contains("runtime = \"runsc\"` under [engine]"), "{err}");
    // Docker passes the runtime, and reports it back.
    let docker = EngineProfile::read(&version(&["Engine"]), &info(true), 0, None);
    docker.check_runtime(Some("runsc")).unwrap();
}

#[test]
fn a_range_someone_else_has_ids_of_is_named() {
    let range = IdRange {
        uid: 2_000_000,
        gid: 3_000_000,
        count: 65_536,
    };
    let mine = "pincer:2000000:65536\ncontainers:200000:1000000\n";
    let clean = range.conflicts(
        mine,
        "pincer:3000000:65536\n",
        "root:x:0:0::/root:/bin/sh\n",
        "root:x:0:\n",
    );
    assert_eq!(clean, Vec::<String>::new());
    let found = range.conflicts(
        "pincer:2000000:65536\ncontainers:1990000:20000\n",
        "alice:3065535:10\n",
        "svc:x:2000100:2000100::/:/bin/false\n",
        "grp:x:3000001:\n",
    );
    assert_eq!(
        found,
        [
            "/etc/subuid gives `containers` ids of it",
            "/etc/subgid gives `alice` ids of it",
            "/etc/passwd has `svc` with id 2000100 in it",
            "/etc/group has `grp` with id 3000001 in it",
        ]
    );
    // A line that ends where the range starts is beside it, not in it.
    assert!(
        range
            .conflicts("bob:1934464:65536\n", "", "", "")
            .is_empty()
    );
}

#[test]
fn maps_other_than_decided_are_refused() {
    let user = ContainerUser::UNPRIVILEGED;
    let rootful = Expected {
        root: Some(ContainerUser {
            uid: 2_000_000,
            gid: 3_000_000,
        }),
        agent: ContainerUser {
            uid: 2_065_530,
            gid: 3_065_530,
        },
    };
    let (uids, gids) = ("0 2000000 65531\n", "0 3000000 65531\n");
    judge_id_maps(uids, gids, user, rootful).unwrap();
    // No namespace of its own: the host's identity map.
    let err = judge_id_maps("0 0 4294967295\n", gids, user, rootful).unwrap_err();
    assert!(
        err.contains("no user namespace of its own (uid_map: 0 0 4294967295)"),
        "{err}"
    );
    // An empty map (the kernel's before one is written) is no namespace either.
    let err = judge_id_maps(uids, "", user, rootful).unwrap_err();
    assert!(
        err.contains("no user namespace of its own (gid_map: )"),
        "{err}"
    );
    // Root elsewhere than the range.
    let err = judge_id_maps("0 1000 65531\n", gids, user, rootful).unwrap_err();
    assert!(
        err.contains("root uid is host uid 1000, not 2000000"),
        "{err}"
    );
    // The agent not where its folders' owner is (a map that stops short).
    let err = judge_id_maps("0 2000000 1000\n", gids, user, rootful).unwrap_err();
    assert!(
        err.contains("agent's uid 65530 maps to host uid none, not 2065530"),
        "{err}"
    );
    let err = judge_id_maps(uids, "0 3000000 65530\n65530 42 1\n", user, rootful).unwrap_err();
    assert!(
        err.contains("agent's gid 65530 maps to host gid 42, not 3065530"),
        "{err}"
    );
    // Rootless: root is any uid but the host's; the agent is the owner.
    let owner = ContainerUser {
        uid: 1000,
        gid: 1000,
    };
    let rootless = Expected {
        root: None,
        agent: owner,
    };
    let keep_id = "0 100000 1000\n1000 1000 1\n1001 101000 64535\n";
    judge_id_maps(keep_id, keep_id, owner, rootless).unwrap();
    let err = judge_id_maps("0 100000 65536\n", keep_id, owner, rootless).unwrap_err();
    assert!(
        err.contains("agent's uid 1000 maps to host uid 101000, not 1000"),
        "{err}"
    );
}
