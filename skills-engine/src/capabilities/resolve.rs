//! Paths as the code writes them, resolved through the file's `use` items
//! and sorted into what they reach: a process, the network, the file
//! system, the environment.
//!
//! Resolution is simple on purpose: every `use` in a file, at any depth,
//! goes into one table (the last of a name wins), a path whose first
//! segment is in the table is expanded, and one starting with `crate`,
//! `self` or `super` is the skill's own. A glob import of a classified
//! module cannot be followed, so the `use` itself is reported.

use std::collections::BTreeMap;

use syn::visit::Visit;

use super::Kind;

/// Crates (and modules) that speak HTTP or sockets: any path through them
/// is a network finding.
const NETWORK_CRATES: &[&[&str]] = &[
    &["std", "net"],
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
];

/// Modules and crates that reach the file system (the home folder's crates
/// included: a path built from them is outside Pincer's folders).
const FS_CRATES: &[&[&str]] = &[
    &["std", "fs"],
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
    /// A process module (`what`: `std::process` or `tokio::process`).
    Process(String),
    /// `std::env::var`/`var_os` (a variable by name).
    EnvVar,
    /// `std::env::vars`/`vars_os` (every variable).
    EnvVars,
    /// Any other kind, reported with the path.
    Other(Kind),
}

/// One name a `use` brings in.
#[derive(Debug, Clone)]
pub(super) struct Import {
    /// The path it stands for.
    pub(super) path: Vec<String>,
    /// The `use`'s line.
    pub(super) line: usize,
    /// Whether a later path went through it.
    pub(super) used: bool,
}

/// The `use` items of one file.
#[derive(Debug, Default)]
pub(super) struct Imports {
    /// Name → what it stands for.
    pub(super) names: BTreeMap<String, Import>,
    /// Glob imports: the module, the line.
    pub(super) globs: Vec<(Vec<String>, usize)>,
}

impl Imports {
    /// Every `use` in `file`.
    pub(super) fn of(file: &syn::File) -> Self {
        let mut imports = Self::default();
        imports.visit_file(file);
        imports
    }

    /// `path` with its first segment expanded through the imports (marking
    /// that import used); `None` for the skill's own paths.
    pub(super) fn resolve(&mut self, path: &syn::Path) -> Option<Vec<String>> {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let first = segments.first()?;
        if matches!(first.as_str(), "crate" | "self" | "super" | "Self") {
            return None;
        }
        if path.leading_colon.is_none()
            && let Some(import) = self.names.get_mut(first)
        {
            import.used = true;
            let mut full = import.path.clone();
            full.extend(segments.into_iter().skip(1));
            return Some(full);
        }
        Some(segments)
    }

    /// Adds the names of one use tree under `prefix`.
    fn add(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.add(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.insert(prefix, &name.ident, None),
            syn::UseTree::Rename(rename) => {
                self.insert(prefix, &rename.ident, Some(&rename.rename));
            }
            syn::UseTree::Glob(glob) => {
                let line = glob.star_token.spans[0].start().line;
                self.globs.push((prefix.clone(), line));
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.add(prefix, tree);
                }
            }
        }
    }

    /// `prefix::ident` under its own name or `rename` (`self` stands for
    /// the prefix).
    fn insert(&mut self, prefix: &[String], ident: &syn::Ident, rename: Option<&syn::Ident>) {
        let mut path = prefix.to_vec();
        if ident != "self" {
            path.push(ident.to_string());
        }
        let Some(last) = path.last().cloned() else {
            return;
        };
        let name = rename.map_or(last, ToString::to_string);
        let line = rename.unwrap_or(ident).span().start().line;
        self.names.insert(
            name,
            Import {
                path,
                line,
                used: false,
            },
        );
    }
}

impl<'ast> Visit<'ast> for Imports {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !test_only(item) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.add(&mut Vec::new(), &item.tree);
    }
}

/// Whether an item is compiled for tests only (`#[cfg(test)]`, `#[test]`):
/// it never links into the owner's binary.
pub(super) fn test_only(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Mod(item) => &item.attrs,
        syn::Item::Fn(item) => &item.attrs,
        syn::Item::Impl(item) => &item.attrs,
        syn::Item::Use(item) => &item.attrs,
        syn::Item::Const(item) => &item.attrs,
        syn::Item::Static(item) => &item.attrs,
        syn::Item::Struct(item) => &item.attrs,
        syn::Item::Enum(item) => &item.attrs,
        _ => return false,
    };
    attrs.iter().any(|attr| {
        attr.path().is_ident("test")
            || (attr.path().is_ident("cfg")
                && matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == "test"))
    })
}

/// What a resolved path reaches, if anything of note; a single segment
/// (an unresolved local name) reaches nothing.
pub(super) fn reach(path: &[String]) -> Option<Reach> {
    let starts = |prefix: &[&str]| {
        path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
    };
    if path.len() < 2 {
        return None;
    }
    for root in [["std", "process"], ["tokio", "process"]] {
        if starts(&root) {
            let harmless = path
                .get(2)
                .is_some_and(|item| root[0] == "std" && PROCESS_HARMLESS.contains(&item.as_str()));
            return (!harmless).then(|| Reach::Process(root.join("::")));
        }
    }
    if starts(&["std", "env"]) {
        return match path.get(2).map(String::as_str) {
            Some("var" | "var_os") => Some(Reach::EnvVar),
            Some("vars" | "vars_os") => Some(Reach::EnvVars),
            Some("home_dir") => Some(Reach::Other(Kind::Fs)),
            _ => None,
        };
    }
    if NETWORK_CRATES.iter().any(|prefix| starts(prefix))
        && !NETWORK_DATA.iter().any(|prefix| starts(prefix))
    {
        return Some(Reach::Other(Kind::Network));
    }
    if FS_CRATES.iter().any(|prefix| starts(prefix)) {
        return Some(Reach::Other(Kind::Fs));
    }
    None
}

/// What an imported path reaches: as [`reach`], and a whole crate of note
/// too (`use reqwest;`; in code, a one-segment path is a local name).
pub(super) fn reach_import(path: &[String]) -> Option<Reach> {
    if let [first] = path {
        if NETWORK_CRATES.iter().any(|p| p.len() == 1 && p[0] == first) {
            return Some(Reach::Other(Kind::Network));
        }
        if FS_CRATES.iter().any(|p| p.len() == 1 && p[0] == first) {
            return Some(Reach::Other(Kind::Fs));
        }
    }
    reach(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_data_and_a_client_is_the_network() {
        let path = |p: &str| p.split("::").map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(reach(&path("hyper::header::AUTHORIZATION")), None);
        assert_eq!(
            reach(&path("hyper::Request::post")),
            Some(Reach::Other(Kind::Network))
        );
    }

    fn path(text: &str) -> Vec<String> {
        text.split("::").map(str::to_owned).collect()
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
    fn uses_expand_paths() {
        let file: syn::File = syn::parse_str(
            "use std::{fs, env as e};\nuse std::process::Command;\nuse tokio::net::*;\nuse a::b::{self};\n",
        )
        .unwrap();
        let mut imports = Imports::of(&file);
        let resolved = imports.resolve(&syn::parse_str("Command::new").unwrap());
        assert_eq!(resolved, Some(path("std::process::Command::new")));
        let resolved = imports.resolve(&syn::parse_str("e::var").unwrap());
        assert_eq!(resolved, Some(path("std::env::var")));
        assert_eq!(imports.resolve(&syn::parse_str("crate::x").unwrap()), None);
        assert!(imports.names["Command"].used && !imports.names["fs"].used);
        assert_eq!(imports.names["Command"].line, 2);
        assert_eq!(imports.names["b"].path, path("a::b"));
        assert_eq!(imports.globs, vec![(path("tokio::net"), 3)]);
    }
}
