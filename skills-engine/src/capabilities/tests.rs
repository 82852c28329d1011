//! The scan of single files, from source text: each kind of finding, its
//! line, and the declarations that cover it.

use super::declared::Capabilities;
use super::scan::{Declared, scan_file};
use super::{Finding, Kind};

const FILE: &str = "skills/x/src/lib.rs";

fn scan_with(source: &str, caps: &Capabilities, manifest_env: &[String]) -> Vec<Finding> {
    let ast = syn::parse_file(source).unwrap();
    let declared = Declared {
        capabilities: caps,
        manifest_env,
        skill_dir: "skills/x",
    };
    scan_file(declared, FILE, &ast)
}

/// (kind, line, what, declared) of each finding, sorted.
fn scan(source: &str, caps: &Capabilities) -> Vec<(Kind, usize, String, bool)> {
    let mut found: Vec<_> = scan_with(source, caps, &[])
        .into_iter()
        .map(|f| (f.kind, f.line, f.what, f.declared))
        .collect();
    found.sort();
    found
}

fn f(kind: Kind, line: usize, what: &str, declared: bool) -> (Kind, usize, String, bool) {
    (kind, line, what.to_owned(), declared)
}

#[test]
fn processes_through_uses_and_paths() {
    let source = "use std::process::Command;\n\
                  use std::process as p;\n\
                  fn f(x: &str) {\n\
                  \x20   Command::new(\"sh\").arg(\"-c\");\n\
                  \x20   p::Command::new(x);\n\
                  \x20   std::process::exit(0);\n\
                  }\n";
    let none = Capabilities::default();
    assert_eq!(
        scan(source, &none),
        [
            f(Kind::Process, 4, "sh", false),
            f(Kind::Process, 5, "std::process", false)
        ]
    );
    let sh = Capabilities {
        processes: vec!["sh".into()],
        ..Capabilities::default()
    };
    assert_eq!(
        scan(source, &sh),
        [
            f(Kind::Process, 4, "sh", true),
            f(Kind::Process, 5, "std::process", false)
        ]
    );
}

#[test]
fn unused_imports_are_reported_and_used_ones_are_not() {
    let source = "use std::{fs, env};\nuse std::net::TcpStream;\nuse tokio::process::*;\n\
                  fn f() { let _ = fs::read(\"x\"); let _ = env::var(\"HOME\"); }\n";
    assert_eq!(
        scan(source, &Capabilities::default()),
        [
            f(Kind::Process, 3, "tokio::process", false),
            f(Kind::Network, 2, "std::net::TcpStream", false),
            f(Kind::Fs, 4, "std::fs::read", false),
            f(Kind::Env, 4, "HOME", false),
        ]
    );
}

#[test]
fn environment_literals_urls_and_paths() {
    let source = "const API: &str = \"https://api.example.com/v1\";\n\
                  /// Docs naming evil.example.com are not code.\n\
                  fn f(name: &str) {\n\
                  \x20   let _ = std::env::var(\"TOKEN\");\n\
                  \x20   let _ = std::env::var_os(name);\n\
                  \x20   let _ = env!(\"CARGO_PKG_VERSION\");\n\
                  \x20   let _ = format!(\"{}\", \"~/.ssh/id_rsa\");\n\
                  \x20   let _ = (\"/etc/passwd\", \"lib.rs\", \"/health\", \"1.2.3\");\n\
                  \x20   let _ = std::env::vars();\n\
                  }\n";
    let caps = Capabilities {
        network: vec!["example.com".into()],
        files: vec!["~/.ssh".into()],
        ..Capabilities::default()
    };
    let mut found: Vec<_> = scan_with(source, &caps, &["TOKEN".into()])
        .into_iter()
        .map(|f| (f.kind, f.line, f.what, f.declared))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            f(Kind::Url, 1, "api.example.com", true),
            f(Kind::Fs, 7, "~/.ssh/id_rsa", true),
            f(Kind::Fs, 8, "/etc/passwd", false),
            f(Kind::Env, 4, "TOKEN", true),
            f(Kind::Env, 5, "std::env::var", false),
            f(Kind::Env, 6, "CARGO_PKG_VERSION", false),
            f(Kind::Env, 9, "std::env::vars", false),
        ]
    );
}

#[test]
fn unsafe_code_ffi_includes_and_registrations() {
    let source = "unsafe extern \"C\" { fn abs(x: i32) -> i32; }\n\
                  #[unsafe(no_mangle)]\n\
                  pub unsafe fn g() {}\n\
                  unsafe impl Send for S {}\n\
                  unsafe trait T {}\n\
                  fn h(r: &mut R) {\n\
                  \x20   unsafe { g() };\n\
                  \x20   r.add_channel(c);\n\
                  \x20   r.add_runtime(x);\n\
                  \x20   let _ = include_str!(\"../data/prompt.txt\");\n\
                  \x20   let _ = include_bytes!(\"../../../.ssh/id_rsa\");\n\
                  }\n\
                  #[path = \"/tmp/x.rs\"]\nmod m;\n";
    let caps = Capabilities {
        unsafe_code: true,
        registers: vec!["channel".into()],
        ..Capabilities::default()
    };
    assert_eq!(
        scan(source, &caps),
        [
            f(Kind::Unsafe, 1, "extern \"C\" block", true),
            f(Kind::Unsafe, 2, "#[unsafe(no_mangle)]", true),
            f(Kind::Unsafe, 3, "unsafe fn g", true),
            f(Kind::Unsafe, 4, "unsafe impl", true),
            f(Kind::Unsafe, 5, "unsafe trait T", true),
            f(Kind::Unsafe, 7, "unsafe block", true),
            f(Kind::Include, 10, "../data/prompt.txt", true),
            f(Kind::Include, 11, "../../../.ssh/id_rsa", false),
            f(Kind::Include, 13, "/tmp/x.rs", false),
            f(Kind::Register, 8, "channel", true),
            f(Kind::Register, 9, "runtime", false),
        ]
    );
}

#[test]
fn test_only_code_is_not_scanned() {
    let source = "#[cfg(test)]\nuse std::fs;\n\
                  #[cfg(test)]\nmod tests {\n    fn f() { std::process::Command::new(\"rm\"); }\n}\n\
                  #[test]\nfn t() { let _ = \"/etc/passwd\"; }\n\
                  #[cfg(not(test))]\nfn g() { let _ = \"/etc/hosts\"; }\n";
    assert_eq!(
        scan(source, &Capabilities::default()),
        [f(Kind::Fs, 10, "/etc/hosts", false)]
    );
}

#[test]
fn network_crates_in_types_and_macros() {
    let source = "use hyper_util::client::legacy::Client;\n\
                  struct S { c: Client<()> }\n\
                  fn f() {\n\
                  \x20   let _ = vec![reqwest::get(\"http://localhost:8080\")];\n\
                  \x20   tokio::select! { _ = x => {}, _ = y => { let _ = \"wss://chat.example.org\"; } }\n\
                  }\n";
    let caps = Capabilities {
        network: vec!["localhost".into()],
        ..Capabilities::default()
    };
    assert_eq!(
        scan(source, &caps),
        [
            f(Kind::Network, 2, "hyper_util::client::legacy::Client", true),
            f(Kind::Network, 4, "reqwest::get", true),
            f(Kind::Url, 4, "localhost", true),
            f(Kind::Url, 5, "chat.example.org", false),
        ]
    );
}
