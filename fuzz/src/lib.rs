//! The fuzz targets' bodies. Each `fuzz_targets/<name>.rs` is one line that
//! calls `<name>::fuzz`, and `tests/regressions.rs` calls the same function
//! (through [`run`]) on every saved input under `regressions/<name>/`, so a
//! crash the fuzzer found replays under a plain `cargo test`.
//!
//! What each target fuzzes and asserts is said at the top of its
//! `fuzz_targets/<name>.rs`.

pub mod allowlist;
pub mod egress_request;
pub mod host_api_body;
pub mod host_socket;
pub mod mount_path;
pub mod runner_line;

/// Every target, by the name of its `fuzz_targets/<name>.rs` (and of its
/// `regressions/<name>/` folder).
pub const TARGETS: &[&str] = &[
    "allowlist",
    "egress_request",
    "host_api_body",
    "host_socket",
    "mount_path",
    "runner_line",
];

/// Runs target `name` on `data`; `false` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    let body: fn(&[u8]) = match name {
        "allowlist" => allowlist::fuzz,
        "egress_request" => egress_request::fuzz,
        "host_api_body" => host_api_body::fuzz,
        "host_socket" => host_socket::fuzz,
        "mount_path" => mount_path::fuzz,
        "runner_line" => runner_line::fuzz,
        _ => return false,
    };
    body(data);
    true
}

/// A folder of its own under the temporary directory, for this process and
/// `target`, created empty. A fuzzer ends by `exit`, so nothing removes its
/// folder then: the folders of processes gone are removed here instead.
pub(crate) fn scratch_dir(target: &str) -> std::path::PathBuf {
    let temp = std::env::temp_dir();
    let prefix = format!("pincer-fuzz-{target}-");
    let proc = std::path::Path::new("/proc");
    if proc.join("self").exists()
        && let Ok(entries) = std::fs::read_dir(&temp)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|name| name.strip_prefix(&prefix));
            if pid.is_some_and(|pid| pid.parse::<u32>().is_ok() && !proc.join(pid).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = temp.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
