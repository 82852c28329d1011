//! Fuzzes the mount allowlist parser: any bytes give a policy or a clear
//! error, never a panic; a policy that parses still decides requests.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use pincer::mounts::{HostFacts, MountPolicy, MountRequest};

fuzz_target!(|data: &[u8]| {
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
});
