//! The hardening items of an inspected agent container that Docker and
//! Podman word differently, checked in each one's words.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use crate::on_podman;

/// Checks the items of `container` (an engine's inspection) that the
/// engines word their own way; the caller checks the rest.
pub fn hardening_in_the_engines_words(container: &Value) {
    if on_podman() {
        podman_forms(container);
    } else {
        docker_forms(container);
    }
}

/// What Docker's inspection says of the hardening items it words its own way.
fn docker_forms(container: &Value) {
    let (host, config) = (&container["HostConfig"], &container["Config"]);
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges:true"]));
    // Namespaces (CIS 5.9, 5.15, 5.16, 5.20, 5.21, 5.30).
    assert_eq!(host["IpcMode"], "private");
    assert_eq!(host["PidMode"], "");
    assert_eq!(host["UTSMode"], "");
    assert_eq!(host["UsernsMode"], "");
    assert_eq!(host["CgroupnsMode"], "private");
    assert_eq!(config["NetworkDisabled"], true);
    assert!(host["LogConfig"]["Config"]["max-size"].is_string());
    // Mounts: only binds through `Mounts`, never `Binds` strings; read-only
    // ones non-recursive; no engine socket.
    assert!(host["Binds"].is_null(), "{}", host["Binds"]);
    let mounts = host["Mounts"].as_array().unwrap();
    let targets: Vec<&str> = mounts
        .iter()
        .map(|m| m["Target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, MOUNT_TARGETS);
    for mount in mounts {
        assert_eq!(mount["Type"], "bind");
        let source = mount["Source"].as_str().unwrap();
        assert!(!source.contains("docker.sock"), "{source}");
        if mount["ReadOnly"] == true {
            assert_eq!(mount["BindOptions"]["NonRecursive"], true, "{mount}");
        }
    }
    assert_eq!(mounts[3]["ReadOnly"], true, "the socket mount is read-only");
}

/// The same items in Podman's words (its Docker-compatible inspection):
/// the dropped capabilities by name, namespaces as `private` (IPC as
/// `shareable`: a namespace of its own that another container could be
/// told to join), binds as mount points. Its cgroup namespace is the
/// host's on cgroup v1 whatever is asked (SECURITY.md).
fn podman_forms(container: &Value) {
    let host = &container["HostConfig"];
    let dropped = host["CapDrop"].as_array().unwrap();
    for cap in [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ] {
        assert!(
            dropped.contains(&json!(cap)),
            "{cap} not dropped: {dropped:?}"
        );
    }
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(host["IpcMode"], "shareable");
    assert_eq!(host["PidMode"], "private");
    assert_eq!(host["UTSMode"], "private");
    assert_eq!(host["UsernsMode"], "private");
    // Podman adds its own tmpfs on /run and /var/tmp to a read-only root.
    for (target, options) in host["Tmpfs"].as_object().unwrap() {
        for option in ["nosuid", "nodev"] {
            assert!(
                options.as_str().unwrap().contains(option),
                "{target}: {options}"
            );
        }
    }
    // In no order of its own.
    let mounts = container["Mounts"].as_array().unwrap();
    let mut targets: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut expected = MOUNT_TARGETS;
    expected.sort_unstable();
    assert_eq!(targets, expected);
    for mount in mounts {
        assert_eq!(mount["Type"], "bind");
        let source = mount["Source"].as_str().unwrap();
        assert!(
            !source.contains("podman.sock") && !source.contains("docker.sock"),
            "{source}"
        );
    }
    let socket = mounts
        .iter()
        .find(|m| m["Destination"] == MOUNT_TARGETS[3])
        .unwrap();
    assert_eq!(socket["RW"], false, "the socket mount is read-only");
}

const MOUNT_TARGETS: [&str; 4] = [
    "/workspace/group",
    "/workspace/session",
    "/workspace/global",
    "/run/pincer/host.sock",
];
