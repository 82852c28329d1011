//! What a resolved path reaches: the crates and modules that spawn
//! programs, speak to the network, touch the file system or read the
//! environment, and the few items of them that do none of it.

use super::Kind;

/// Crates and modules that spawn programs: any path through them is a
/// process finding, named by the prefix.
const PROCESS_CRATES: &[&[&str]] = &[
    &["std", "process"],
    &["tokio", "process"],
    &["async_std", "process"],
    &["smol", "process"],
    &["async_process"],
    &["duct"],
    &["subprocess"],
    &["xshell"],
    &["rustix", "process"],
    &["std", "os", "unix", "process"],
];

/// Items of `libc` and `nix::unistd` that fork or run programs (an `exec`
/// prefix stands for the whole family: `execv`, `execvp`, `execl`, …).
const PROCESS_CALLS: &[(&[&str], &[&str])] = &[
    (
        &["libc"],
        &[
            "system",
            "fork",
            "vfork",
            "popen",
            "posix_spawn",
            "posix_spawnp",
        ],
    ),
    (&["nix", "unistd"], &["fork", "vfork"]),
];

/// Crates (and modules) that speak HTTP or sockets: any path through them
/// is a network finding.
const NETWORK_CRATES: &[&[&str]] = &[
    &["std", "net"],
    &["std", "os", "unix", "net"],
    &["tokio", "net"],
    &["async_std", "net"],
    &["reqwest"],
    &["hyper"],
    &["hyper_util"],
    &["hyper_rustls"],
    &["ureq"],
    &["isahc"],
    &["surf"],
    &["curl"],
    &["attohttpc"],
    &["h2"],
    &["tokio_rustls"],
    &["rustls"],
    &["socket2"],
    &["mio"],
    &["tungstenite"],
    &["tokio_tungstenite"],
    &["native_tls"],
    &["openssl"],
    &["tonic"],
    &["axum"],
    &["warp"],
    &["actix_web"],
    &["lettre"],
    &["ssh2"],
];

/// Modules and crates that reach the file system (the home folder's crates
/// included: a path built from them is outside Pincer's folders).
const FS_CRATES: &[&[&str]] = &[
    &["std", "fs"],
    &["std", "os", "unix", "fs"],
    &["tokio", "fs"],
    &["async_std", "fs"],
    &["std", "env", "home_dir"],
    &["dirs"],
    &["dirs_next"],
    &["home"],
];

/// Modules of the network crates that are plain data (header names and
/// values, status codes, methods): naming them opens no connection.
const NETWORK_DATA: &[&[&str]] = &[
    &["hyper", "header"],
    &["hyper", "StatusCode"],
    &["hyper", "Method"],
];

/// Items of `std::process` that spawn nothing (exiting, the process id).
const PROCESS_HARMLESS: &[&str] = &["exit", "abort", "id", "ExitCode", "Termination"];

/// What a resolved path reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reach {
    /// A process module (`what`: `std::process`, `libc::system`, …).
    Process(String),
    /// `std::env::var`/`var_os` (a variable by name).
    EnvVar,
    /// `std::env::vars`/`vars_os` (every variable).
    EnvVars,
    /// Any other kind, reported with the path.
    Other(Kind),
}

/// Whether `path` starts with `prefix`.
fn starts(path: &[String], prefix: &[&str]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
}

/// The process root `path` goes through, if any.
fn process(path: &[String]) -> Option<String> {
    if let Some(root) = PROCESS_CRATES.iter().find(|root| starts(path, root)) {
        let harmless = starts(path, &["std", "process"])
            && path
                .get(2)
                .is_some_and(|item| PROCESS_HARMLESS.contains(&item.as_str()));
        return (!harmless).then(|| root.join("::"));
    }
    for (module, calls) in PROCESS_CALLS {
        let Some(item) = path.get(module.len()) else {
            continue;
        };
        let runs =
            calls.contains(&item.as_str()) || item.starts_with("exec") || item.starts_with("fexec");
        if starts(path, module) && runs {
            return Some(format!("{}::{item}", module.join("::")));
        }
    }
    None
}

/// What a resolved path reaches, if anything of note; a single segment
/// (an unresolved local name) reaches nothing.
pub(super) fn reach(path: &[String]) -> Option<Reach> {
    if path.len() < 2 {
        return None;
    }
    if let Some(root) = process(path) {
        return Some(Reach::Process(root));
    }
    if starts(path, &["std", "process"]) {
        return None;
    }
    if starts(path, &["std", "env"]) {
        return match path.get(2).map(String::as_str) {
            Some("var" | "var_os") => Some(Reach::EnvVar),
            Some("vars" | "vars_os") => Some(Reach::EnvVars),
            Some("home_dir") => Some(Reach::Other(Kind::Fs)),
            _ => None,
        };
    }
    if NETWORK_CRATES.iter().any(|prefix| starts(path, prefix))
        && !NETWORK_DATA.iter().any(|prefix| starts(path, prefix))
    {
        return Some(Reach::Other(Kind::Network));
    }
    if FS_CRATES.iter().any(|prefix| starts(path, prefix)) {
        return Some(Reach::Other(Kind::Fs));
    }
    None
}

/// What an imported path reaches: as [`reach`], and a whole crate of note
/// too (`use reqwest;`; in code, a one-segment path is a local name).
pub(super) fn reach_import(path: &[String]) -> Option<Reach> {
    if let [first] = path {
        let whole = |crates: &[&[&str]]| crates.iter().any(|p| p.len() == 1 && p[0] == first);
        if whole(PROCESS_CRATES) {
            return Some(Reach::Process(first.clone()));
        }
        if whole(NETWORK_CRATES) {
            return Some(Reach::Other(Kind::Network));
        }
        if whole(FS_CRATES) {
            return Some(Reach::Other(Kind::Fs));
        }
    }
    reach(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<String> {
        text.split("::").map(str::to_owned).collect()
    }

    #[test]
    fn header_names_are_data_and_a_client_is_the_network() {
        assert_eq!(reach(&path("hyper::header::AUTHORIZATION")), None);
        assert_eq!(
            reach(&path("hyper::Request::post")),
            Some(Reach::Other(Kind::Network))
        );
    }

    #[test]
    fn paths_reach_what_they_name() {
        assert_eq!(
            reach(&path("std::process::Command::new")),
            Some(Reach::Process("std::process".into()))
        );
        assert_eq!(reach(&path("std::process::exit")), None);
        assert_eq!(reach(&path("std::env::var")), Some(Reach::EnvVar));
        assert_eq!(reach(&path("std::env::vars")), Some(Reach::EnvVars));
        assert_eq!(reach(&path("std::env::args")), None);
        assert_eq!(
            reach(&path("hyper_util::client::legacy::Client")),
            Some(Reach::Other(Kind::Network))
        );
        assert_eq!(reach(&path("reqwest")), None);
        assert_eq!(reach(&path("home")), None);
        assert_eq!(
            reach_import(&path("reqwest")),
            Some(Reach::Other(Kind::Network))
        );
        assert_eq!(
            reach(&path("tokio::fs::read")),
            Some(Reach::Other(Kind::Fs))
        );
        assert_eq!(reach(&path("tokio::spawn")), None);
        assert_eq!(reach(&path("fs")), None);
    }

    #[test]
    fn more_crates_are_classified() {
        let process = |p: &str| match reach(&path(p)) {
            Some(Reach::Process(root)) => root,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(process("smol::process::Command::new"), "smol::process");
        assert_eq!(process("duct::cmd"), "duct");
        assert_eq!(process("libc::system"), "libc::system");
        assert_eq!(process("libc::execvp"), "libc::execvp");
        assert_eq!(process("nix::unistd::fork"), "nix::unistd::fork");
        assert_eq!(process("nix::unistd::execve"), "nix::unistd::execve");
        assert_eq!(
            process("std::os::unix::process::CommandExt"),
            "std::os::unix::process"
        );
        assert_eq!(reach(&path("libc::c_int")), None);
        assert_eq!(reach(&path("nix::unistd::getpid")), None);
        for network in [
            "std::os::unix::net::UnixStream",
            "tokio_tungstenite::connect_async",
            "native_tls::TlsConnector",
            "lettre::SmtpTransport",
            "ssh2::Session",
            "axum::Router",
        ] {
            assert_eq!(reach(&path(network)), Some(Reach::Other(Kind::Network)));
        }
        assert_eq!(
            reach(&path("std::os::unix::fs::symlink")),
            Some(Reach::Other(Kind::Fs))
        );
        assert_eq!(
            reach_import(&path("xshell")),
            Some(Reach::Process("xshell".into()))
        );
    }
}
