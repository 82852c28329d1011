//! The body of the `allowlist` target (see `fuzz_targets/allowlist.rs`).

use std::path::{Path, PathBuf};

use pincer_core::mounts::{HostFacts, MountPolicy, MountRequest};

/// Parses `data` as a mount allowlist and, if it parses, decides a few requests.
pub fn fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let facts = HostFacts {
        home: Some(PathBuf::from("/tmp")),
        config_dir: PathBuf::from("/nonexistent/pincer-config"),
        data_dir: PathBuf::from("/nonexistent/pincer-data"),
        engine_sockets: vec![PathBuf::from("/run/docker.sock")],
    };
    match MountPolicy::parse(text, Path::new("fuzz.json"), &facts) {
        Ok(policy) => {
            for path in ["/tmp", "~", "/", "/etc/../tmp/./"] {
                let request = MountRequest {
                    host_path: path.into(),
                    container_name: None,
                    read_write: true,
                };
                if let Ok(mount) = policy.check(&request, false, facts.home.as_deref()) {
                    assert!(mount.read_only() || !policy.non_main_read_only);
                    assert!(mount.target().starts_with("/workspace/extra/"));
                }
            }
        }
        Err(err) => assert!(err.to_string().contains("fuzz.json")),
    }
}
