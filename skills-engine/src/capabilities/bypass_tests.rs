//! The bypasses an adversarial review found, each scanned from source (or
//! from a skill's folder on disk) and found.

use std::collections::BTreeMap;
use std::path::Path;

use super::declared::Capabilities;
use super::scan::{Context, Declared, scan_file_in};
use super::sources::scan_skill;
use super::{Finding, Kind};
use crate::SkillError;

const FILE: &str = "skills/x/src/lib.rs";

fn declared(caps: &Capabilities) -> Declared<'_> {
    Declared {
        capabilities: caps,
        manifest_env: &[],
        skill_dir: "skills/x",
    }
}

/// (kind, line, what, declared) of each finding in `source`, sorted.
fn scan_in(
    source: &str,
    caps: &Capabilities,
    context: &Context,
) -> Vec<(Kind, usize, String, bool)> {
    let ast = syn::parse_file(source).unwrap();
    let mut found: Vec<_> = scan_file_in(declared(caps), context, FILE, &ast)
        .into_iter()
        .map(|f| (f.kind, f.line, f.what, f.declared))
        .collect();
    found.sort();
    found
}

fn scan(source: &str) -> Vec<(Kind, usize, String, bool)> {
    scan_in(source, &Capabilities::default(), &Context::default())
}

fn f(kind: Kind, line: usize, what: &str, declared: bool) -> (Kind, usize, String, bool) {
    (kind, line, what.to_owned(), declared)
}

#[test]
fn paths_resolve_through_suffixes_own_modules_and_extern_crates() {
    let source = "mod m { pub use std as s; }\n\
                  extern crate std as t;\n\
                  use std::process::Command;\n\
                  mod n { use crate::Command; }\n\
                  fn f() {\n\
                  \x20   m::s::process::Command::new(\"sh\");\n\
                  \x20   self::s::process::Command::new(\"id\");\n\
                  \x20   crate::m::s::fs::read(\"x\");\n\
                  \x20   t::net::TcpStream::connect(\"x\");\n\
                  \x20   Command::new(\"rm\");\n\
                  }\n";
    assert_eq!(
        scan(source),
        [
            f(Kind::Process, 6, "sh", false),
            f(Kind::Process, 7, "id", false),
            f(Kind::Process, 10, "rm", false),
            f(Kind::Network, 9, "std::net::TcpStream::connect", false),
            f(Kind::Fs, 8, "std::fs::read", false),
        ]
    );
}

#[test]
fn include_and_env_macros_are_found_under_an_alias() {
    let source = "use std::include_str as inc;\nuse std::env as e;\n\
                  fn f() {\n\
                  \x20   let _ = inc!(\"../../../.ssh/id_rsa\");\n\
                  \x20   let _ = e!(\"AWS_SECRET\");\n\
                  }\n";
    assert_eq!(
        scan(source),
        [
            f(Kind::Env, 5, "AWS_SECRET", false),
            f(Kind::Include, 4, "../../../.ssh/id_rsa", false),
        ]
    );
}

#[test]
fn cargo_renamed_crates_are_the_crates_they_rename() {
    let context = Context {
        renames: BTreeMap::from([("net".to_owned(), "reqwest".to_owned())]),
        ..Context::default()
    };
    let source = "use net::Client;\nfn f() { let _ = net::get(u); }\n";
    assert_eq!(
        scan_in(source, &Capabilities::default(), &context),
        [
            f(Kind::Network, 1, "reqwest::Client", false),
            f(Kind::Network, 2, "reqwest::get", false),
        ]
    );
}

#[test]
fn more_crates_spawn_connect_and_touch_files() {
    let source = "fn f() {\n\
                  \x20   libc::system(p);\n\
                  \x20   let _ = async_std::process::Command::new(\"sh\");\n\
                  \x20   let _ = tokio_tungstenite::connect_async(u);\n\
                  \x20   std::os::unix::fs::symlink(a, b);\n\
                  }\n";
    assert_eq!(
        scan(source),
        [
            f(Kind::Process, 2, "libc::system", false),
            f(Kind::Process, 3, "sh", false),
            f(Kind::Network, 4, "tokio_tungstenite::connect_async", false),
            f(Kind::Fs, 5, "std::os::unix::fs::symlink", false),
        ]
    );
}

#[test]
fn ip_literals_are_hosts_declared_only_by_themselves() {
    let source = "const A: &str = \"203.0.113.5:443\";\n\
                  const B: &str = \"http://10.0.0.1/x\";\n";
    let caps = Capabilities {
        network: vec!["203.0.113.5".into(), "0.0.1".into()],
        ..Capabilities::default()
    };
    assert_eq!(
        scan_in(source, &caps, &Context::default()),
        [
            f(Kind::Url, 1, "203.0.113.5", true),
            f(Kind::Url, 2, "10.0.0.1", false),
        ]
    );
}

#[test]
fn macro_bodies_that_are_not_expressions_are_walked_for_paths_and_unsafe() {
    let source = "use std::process as p;\n\
                  macro_rules! run { ($x:expr) => { libc::system($x); } }\n\
                  lazy_static! { static ref C: X = ::std::process::Command::new(\"sh\"); }\n\
                  thread_local! { static T: u8 = unsafe { g() }; }\n\
                  fn f() { tokio::select! { _ = a => { p::Command::new(\"id\"); } } }\n";
    assert_eq!(
        scan(source),
        [
            f(Kind::Process, 2, "libc::system", false),
            f(Kind::Process, 3, "std::process", false),
            f(Kind::Process, 5, "std::process", false),
            f(Kind::Unsafe, 4, "unsafe in a macro body", false),
        ]
    );
}

/// Writes `files` (path, text) under a fresh root.
fn skill_on_disk(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    root
}

fn scan_dir(root: &Path) -> Result<Vec<Finding>, SkillError> {
    scan_skill(root, declared(&Capabilities::default()))
}

#[test]
fn every_rs_file_in_the_skill_is_scanned_but_tests_and_host() {
    let spawn = "fn f() { std::process::Command::new(\"sh\"); }\n";
    let root = skill_on_disk(&[
        (
            "skills/x/Cargo.toml",
            "[dependencies]\nnet = { package = \"reqwest\" }\n",
        ),
        ("skills/x/src/lib.rs", "fn f() { net::get(u); }\n"),
        ("skills/x/build.rs", "mod helper;\n"),
        ("skills/x/helper.rs", spawn),
        ("skills/x/util/src/lib.rs", spawn),
        ("skills/x/tests/t.rs", spawn),
        ("skills/x/host.rs", spawn),
    ]);
    let mut found: Vec<_> = scan_dir(root.path())
        .unwrap()
        .into_iter()
        .map(|f| (f.file, f.kind, f.what))
        .collect();
    found.sort();
    let at = |file: &str, kind, what: &str| (format!("skills/x/{file}"), kind, what.to_owned());
    assert_eq!(
        found,
        [
            at("helper.rs", Kind::Process, "sh"),
            at("src/lib.rs", Kind::Network, "reqwest::get"),
            at("util/src/lib.rs", Kind::Process, "sh"),
        ]
    );
}

#[test]
fn included_code_must_be_scanned_and_included_data_no_symlink() {
    let root = skill_on_disk(&[
        (
            "skills/x/src/lib.rs",
            "#[path = \"gen/code.rs\"]\nmod code;\n#[path = \"gen/data.txt\"]\nmod data;\n\
             include!(\"../../../elsewhere.rs\");\n\
             const A: &str = include_str!(\"../assets/a.txt\");\n\
             const B: &str = include_str!(\"../link/b.txt\");\n",
        ),
        ("skills/x/src/gen/code.rs", ""),
        ("skills/x/src/gen/data.txt", ""),
        ("skills/x/assets/a.txt", ""),
        ("elsewhere.rs", ""),
        ("outside/b.txt", ""),
    ]);
    std::os::unix::fs::symlink(
        root.path().join("outside"),
        root.path().join("skills/x/link"),
    )
    .unwrap();
    let mut found: Vec<_> = scan_dir(root.path())
        .unwrap()
        .into_iter()
        .map(|f| (f.kind, f.line, f.what, f.declared))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            f(
                Kind::Include,
                0,
                "a symlink, not followed: its target is not scanned",
                false
            ),
            f(Kind::Include, 1, "gen/code.rs", true),
            f(Kind::Include, 3, "gen/data.txt", false),
            f(Kind::Include, 5, "../../../elsewhere.rs", false),
            f(Kind::Include, 6, "../assets/a.txt", true),
            f(Kind::Include, 7, "../link/b.txt", false),
        ]
    );
}

#[test]
fn a_source_file_over_one_mebibyte_is_refused() {
    let big = format!("const A: &str = \"{}\";\n", "x".repeat(1024 * 1024));
    let root = skill_on_disk(&[("skills/x/src/lib.rs", &big)]);
    match scan_dir(root.path()) {
        Err(SkillError::Refused(why)) => assert!(why.contains("skills/x/src/lib.rs"), "{why}"),
        other => panic!("{other:?}"),
    }
}
