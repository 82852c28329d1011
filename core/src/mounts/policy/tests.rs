//! Unit tests of the mount allowlist: parsing, merging and decisions on real folders (temp dirs), no engine.

use super::*;
use std::os::unix::fs::symlink;

/// A host in a temp folder: a home with projects, secrets and links.
struct Fixture {
    root: tempfile::TempDir,
    facts: HostFacts,
}

const ALLOWLIST: &str = r#"{
    "allowed_roots": [
        {"path": "~/projects", "allow_read_write": true, "description": "code"},
        {"path": "~/projects/scratch", "allow_read_write": false},
        {"path": "~/docs/"}
    ],
    "blocked_patterns": ["password-store", "~/docs/private"],
    "non_main_read_only": true
}"#;

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in [
            "home/projects/app/src/generated",
            "home/projects/app/deep/.ssh",
            "home/projects/app/password-store",
            "home/projects/scratch/x",
            "home/projects/%2e%2e",
            "home/projects/CaseDir/.SSH",
            "home/projects/empty",
            "home/.ssh",
            "home/docs/manual",
            "home/docs/private",
            "outside",
            "config",
            "data",
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::fs::write(r.join("home/projects/app/.env"), "SECRET=1").unwrap();
        std::fs::write(r.join("home/projects/app/deep/.ssh/key"), "k").unwrap();
        symlink(r.join("outside"), r.join("home/projects/link_out")).unwrap();
        symlink(r.join("home/.ssh"), r.join("home/projects/link_blocked")).unwrap();
        symlink("../projects/app", r.join("home/docs/app_link")).unwrap();
        let facts = HostFacts {
            home: Some(r.join("home")),
            config_dir: r.join("config"),
            data_dir: r.join("data"),
            engine_sockets: vec![r.join("docker.sock")],
        };
        Self { root, facts }
    }

    fn policy(&self) -> MountPolicy {
        MountPolicy::parse(ALLOWLIST, &self.root.path().join("allow.json"), &self.facts).unwrap()
    }

    fn home(&self) -> &Path {
        self.facts.home.as_deref().unwrap()
    }

    fn real(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative).canonicalize().unwrap()
    }

    fn check(&self, path: &str, rw: bool, main: bool) -> Result<ValidatedMount, Denial> {
        self.policy().check(
            &MountRequest {
                host_path: path.into(),
                container_name: None,
                read_write: rw,
            },
            main,
            Some(self.home()),
        )
    }
}

fn denied(result: Result<ValidatedMount, Denial>, why: &str) {
    match result {
        Ok(mount) => panic!("allowed {mount:?}, expected a denial containing {why:?}"),
        Err(denial) => assert!(denial.reason.contains(why), "{denial}"),
    }
}

#[test]
fn traversal_is_resolved_before_anything_is_decided() {
    let f = Fixture::new();
    denied(
        f.check("~/projects/../.ssh", false, true),
        "blocked pattern \".ssh\"",
    );
    denied(
        f.check("~/projects/../../outside", false, true),
        "not under any allowed root",
    );
    denied(
        f.check("~/projects/app/../../../config", false, true),
        "protected path",
    );
    // `%2e%2e` is a name like any other, not a parent reference.
    let mount = f.check("~/projects/%2e%2e", false, true).unwrap();
    assert_eq!(mount.source(), f.real("home/projects/%2e%2e"));
    assert_eq!(mount.target(), "/workspace/extra/%2e%2e");
}

#[test]
fn symlinks_are_judged_by_where_they_lead() {
    let f = Fixture::new();
    denied(
        f.check("~/projects/link_blocked", false, true),
        "resolves to",
    );
    denied(
        f.check("~/projects/link_out", false, true),
        "not under any allowed root",
    );
    // A link from one allowed root into another is fine, and what is mounted
    // is the real path, judged by the root it really lies in.
    let mount = f.check("~/docs/app_link", true, true).unwrap();
    assert_eq!(mount.source(), f.real("home/projects/app"));
    assert!(!mount.read_only(), "~/projects allows read-write");
}

#[test]
fn blocked_names_anywhere_in_the_path_and_in_any_case() {
    let f = Fixture::new();
    denied(f.check("~/projects/app/deep/.ssh/key", false, true), ".ssh");
    denied(f.check("~/projects/app/deep/.ssh", false, true), ".ssh");
    denied(f.check("~/projects/app/.env", false, true), ".env");
    denied(f.check("~/projects/CaseDir/.SSH", false, true), ".ssh");
    denied(
        f.check("~/projects/app/password-store", false, true),
        "password-store",
    );
    // A blocked path is never mounted, nor is any folder that contains it.
    denied(f.check("~/docs/private", false, true), "protected path");
    denied(f.check("~/docs", false, true), "protected path");
    assert!(f.check("~/projects/app/src", false, true).is_ok());
}

#[test]
fn trailing_slashes_and_home_forms() {
    let f = Fixture::new();
    for path in ["~/projects/app/", "~/projects/app//", "~/projects/./app"] {
        let mount = f.check(path, false, true).unwrap();
        assert_eq!(mount.source(), f.real("home/projects/app"), "{path}");
        assert_eq!(mount.target(), "/workspace/extra/app", "{path}");
    }
    let absolute = f.real("home/projects/app");
    assert!(f.check(absolute.to_str().unwrap(), false, true).is_ok());
    // The home holds ~/docs/private (blocked): never mounted whole.
    denied(f.check("~", false, true), "protected path");
    denied(f.check("~/docs/../", false, true), "protected path");
    denied(f.check("~root/projects", false, true), "only `~` and `~/…`");
    denied(f.check("projects/app", false, true), "must be absolute");
    denied(f.check("", false, true), "empty");
}

#[test]
fn non_existent_paths_are_refused() {
    let f = Fixture::new();
    denied(f.check("~/projects/nope", false, true), "does not exist");
    denied(
        f.check("~/projects/app/missing.txt", false, true),
        "does not exist",
    );
}

#[test]
fn the_root_itself_is_allowed() {
    let f = Fixture::new();
    let mount = f.check("~/projects", true, true).unwrap();
    assert_eq!(mount.source(), f.real("home/projects"));
    assert!(!mount.read_only());
}

#[test]
fn read_write_needs_the_request_the_root_and_main() {
    let f = Fixture::new();
    // Requested, allowed by the root, main: read-write.
    assert!(!f.check("~/projects/app", true, true).unwrap().read_only());
    // Not requested: read-only.
    assert!(f.check("~/projects/app", false, true).unwrap().read_only());
    // The more specific root (scratch) is read-only: it wins.
    assert!(
        f.check("~/projects/scratch/x", true, true)
            .unwrap()
            .read_only()
    );
    // A root without allow_read_write.
    assert!(f.check("~/docs/manual", true, true).unwrap().read_only());
    // Non-main with non_main_read_only: read-only.
    assert!(f.check("~/projects/app", true, false).unwrap().read_only());
    // ... unless the owner turned that off.
    let open = ALLOWLIST.replace(
        "\"non_main_read_only\": true",
        "\"non_main_read_only\": false",
    );
    let policy = MountPolicy::parse(&open, Path::new("a.json"), &f.facts).unwrap();
    let request = MountRequest {
        host_path: "~/projects/app".into(),
        container_name: None,
        read_write: true,
    };
    assert!(
        !policy
            .check(&request, false, Some(f.home()))
            .unwrap()
            .read_only()
    );
}

#[test]
fn equally_specific_roots_take_the_stricter() {
    let f = Fixture::new();
    let text = r#"{"allowed_roots": [
        {"path": "~/projects", "allow_read_write": true},
        {"path": "~/projects/", "allow_read_write": false}]}"#;
    let policy = MountPolicy::parse(text, Path::new("a.json"), &f.facts).unwrap();
    let request = MountRequest {
        host_path: "~/projects/app".into(),
        container_name: None,
        read_write: true,
    };
    assert!(
        policy
            .check(&request, true, Some(f.home()))
            .unwrap()
            .read_only()
    );
}

#[test]
fn pincer_folders_and_engine_sockets_are_never_mounted() {
    let f = Fixture::new();
    let text = r#"{"allowed_roots": [{"path": "/", "allow_read_write": true}]}"#;
    let policy = MountPolicy::parse(text, Path::new("a.json"), &f.facts).unwrap();
    let check = |path: &Path| {
        policy.check(
            &MountRequest {
                host_path: path.to_string_lossy().into_owned(),
                container_name: Some("x".into()),
                read_write: false,
            },
            true,
            None,
        )
    };
    std::fs::write(f.root.path().join("docker.sock"), "").unwrap();
    denied(check(&f.root.path().join("config")), "protected path");
    denied(check(&f.root.path().join("data")), "protected path");
    denied(check(&f.root.path().join("docker.sock")), "protected path");
    // A folder that contains one of them is refused too.
    denied(check(f.root.path()), "protected path");
    denied(check(Path::new("/")), "protected path");
    assert!(check(&f.root.path().join("outside")).is_ok());
}

#[test]
fn container_names_are_checked() {
    let f = Fixture::new();
    let policy = f.policy();
    let named = |name: &str| {
        policy.check(
            &MountRequest {
                host_path: "~/projects/app".into(),
                container_name: Some(name.into()),
                read_write: false,
            },
            true,
            Some(f.home()),
        )
    };
    for bad in [
        "", "   ", "a/ /b", "/abs", "a/../b", "..", ".", "a:b", "a\nb", "a//b", "a/", "x\u{7f}",
    ] {
        denied(named(bad), "container name");
    }
    assert_eq!(
        named("code/app").unwrap().target(),
        "/workspace/extra/code/app"
    );
    assert_eq!(named(" docs ").unwrap().target(), "/workspace/extra/docs");
}

#[test]
fn a_malformed_allowlist_is_an_error_naming_the_file_and_the_problem() {
    let f = Fixture::new();
    let file = Path::new("/etc/pincer/mount-allowlist.json");
    let parse = |text: &str| {
        MountPolicy::parse(text, file, &f.facts)
            .unwrap_err()
            .to_string()
    };
    let err = parse(r#"{"allowed_roots": [], "allow_everything": true}"#);
    assert!(
        err.contains("/etc/pincer/mount-allowlist.json")
            && err.contains("unknown field `allow_everything`"),
        "{err}"
    );
    let err = parse(r#"{"allowed_roots": [{"path": "~/x", "allow_read_write": "yes"}]}"#);
    assert!(err.contains("invalid type"), "{err}");
    let err = parse(r#"{"allowed_roots": [{"path": "x"}]}"#);
    assert!(err.contains("allowed_roots[0].path"), "{err}");
    let err = parse(r#"{"allowed_roots": [{"path": "~/x", "rw": true}]}"#);
    assert!(err.contains("unknown field `rw`"), "{err}");
    let err = parse("{\"allowed_roots\": [\n");
    assert!(err.contains("line 2"), "{err}");
    let err = parse(r#"{"blocked_patterns": [" "]}"#);
    assert!(err.contains("blocked_patterns[0]"), "{err}");
    let err = parse(r#"{"blocked_patterns": ["secrets", "~bob/keys"]}"#);
    assert!(err.contains("blocked_patterns[1] \"~bob/keys\""), "{err}");
}

#[test]
fn each_blocked_pattern_is_listed_once() {
    let f = Fixture::new();
    let policy = MountPolicy::parse(
        r#"{"blocked_patterns": [".env", ".ENV", ".ssh/", "mine", "mine"]}"#,
        Path::new("allowlist.json"),
        &f.facts,
    )
    .unwrap();
    assert_eq!(policy.blocked_names.len(), BUILTIN_BLOCKED_NAMES.len() + 1);
    assert!(policy.blocked_names.iter().any(|n| n == "mine"));
}

#[test]
fn a_missing_allowlist_allows_no_extra_mounts() {
    let f = Fixture::new();
    let policy = MountPolicy::load(&f.facts).unwrap();
    assert!(!policy.file_present);
    let denial = policy
        .check(
            &MountRequest {
                host_path: "~/projects".into(),
                container_name: None,
                read_write: false,
            },
            true,
            Some(f.home()),
        )
        .unwrap_err();
    assert!(denial.reason.contains("no mount allowlist"), "{denial}");
    // The built-in names are in force all the same.
    assert!(policy.blocked_names.iter().any(|n| n == ".ssh"));
}

#[test]
fn a_name_matches_a_pattern_it_contains_ignoring_case() {
    assert!(name_matches(".env", ".env"));
    assert!(name_matches(".ENV", ".env"));
    assert!(name_matches(".env.local", ".env"));
    assert!(name_matches("id_rsa.pub", "id_rsa"));
    assert!(name_matches("credentials.json", "credentials"));
    assert!(name_matches("prod.env", ".env"));
    assert!(name_matches("aws_credentials", "credentials"));
    assert!(name_matches(".password-store", "password-store"));
    assert!(!name_matches("env.rs", ".env"));
    assert!(!name_matches("notes.txt", ".env"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever path is asked for, an allowed mount is the real path of
    /// what was asked, lies under an allowed root, carries no blocked
    /// name, and lands under /workspace/extra.
    #[test]
    fn every_allowed_mount_keeps_the_invariants(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "app", "src", "..", ".", "", ".ssh", ".SSH", "deep", "link_out",
                "link_blocked", "%2e%2e", "scratch", "x", ".env", "CaseDir", "projects",
                "docs", "app_link", "private", "manual", "password-store", "nope",
            ]),
            0..6,
        ),
        start in proptest::sample::select(vec!["~/projects", "~/docs", "~/docs/manual", "~", "~/projects/app"]),
        rw in proptest::bool::ANY,
        main in proptest::bool::ANY,
    ) {
        let f = Fixture::new();
        let policy = f.policy();
        let path = format!("{start}/{}", parts.join("/"));
        let request = MountRequest { host_path: path.clone(), container_name: Some("m".into()), read_write: rw };
        if let Ok(mount) = policy.check(&request, main, Some(f.home())) {
            let real = expand_home(&path, Some(f.home())).unwrap().canonicalize().unwrap();
            proptest::prop_assert_eq!(mount.source(), real.as_path());
            proptest::prop_assert!(policy.allowed_roots.iter().any(|r| r.real_path.as_ref().is_some_and(|p| real.starts_with(p))));
            proptest::prop_assert!(policy.blocked_name_in(&real).is_none());
            proptest::prop_assert!(!policy.blocked_paths.iter().any(|b| real.starts_with(b) || b.starts_with(&real)));
            proptest::prop_assert_eq!(mount.target(), "/workspace/extra/m");
            proptest::prop_assert!(mount.read_only() || (rw && main));
            proptest::prop_assert!(!real.starts_with(f.root.path().join("outside").canonicalize().unwrap()));
        }
    }
}
