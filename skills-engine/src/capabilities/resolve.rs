//! Paths as the code writes them, resolved through the file's `use` and
//! `extern crate` items and the skill's Cargo renames.
//!
//! Resolution is simple on purpose: every import in a file, at any depth,
//! goes into one table that keeps every import of a name (a later `use` of
//! the same name in another module must not hide an earlier one). A path
//! is tried as written and through the table, then each of its suffixes
//! the same way (so `crate::m::s::process` reaches `std::process` when
//! `s` stands for `std` anywhere): the first that reaches something wins.
//! A glob import of a classified module cannot be followed, so the `use`
//! itself is reported.

use std::collections::BTreeMap;

use syn::visit::Visit;

pub(super) use super::crates::{Reach, reach, reach_import};

/// Segments that name the skill's own modules: never a crate of note.
const OWN: &[&str] = &["crate", "self", "super", "Self"];

/// How many imports deep a path is expanded (an import's path may itself
/// start with an imported name).
const MAX_DEPTH: usize = 4;

/// How many expansions one path may cost, so that a file with many imports
/// of one name cannot make the scan quadratic without end.
const BUDGET: usize = 512;

/// One name an import brings in.
#[derive(Debug, Clone)]
pub(super) struct Import {
    /// The path it stands for.
    pub(super) path: Vec<String>,
    /// The import's line.
    pub(super) line: usize,
    /// Whether a later path went through it.
    pub(super) used: bool,
}

/// The imports of one file.
#[derive(Debug, Default)]
pub(super) struct Imports {
    /// Name → every import of it.
    pub(super) names: BTreeMap<String, Vec<Import>>,
    /// Glob imports: the module, the line.
    pub(super) globs: Vec<(Vec<String>, usize)>,
    /// The skill's Cargo renames: dependency name → the crate it is.
    pub(super) renames: BTreeMap<String, String>,
}

impl Imports {
    /// Every import in `file`, with the skill's Cargo `renames`.
    pub(super) fn of(file: &syn::File, renames: &BTreeMap<String, String>) -> Self {
        let mut imports = Self {
            renames: renames.clone(),
            ..Self::default()
        };
        imports.visit_file(file);
        imports
    }

    /// `path` with a Cargo-renamed crate replaced by the crate it is.
    pub(super) fn renamed(&self, path: &[String]) -> Vec<String> {
        let mut path = path.to_vec();
        if let Some(first) = path.first_mut()
            && let Some(real) = self.renames.get(first)
        {
            *first = real.clone();
        }
        path
    }

    /// What `path` reaches, and the path it reaches it by.
    pub(super) fn classify(&mut self, path: &syn::Path) -> Option<(Vec<String>, Reach)> {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.classify_segments(&segments, path.leading_colon.is_some())
    }

    /// As [`Imports::classify`], from segments (`absolute`: written with a
    /// leading `::`).
    pub(super) fn classify_segments(
        &mut self,
        segments: &[String],
        absolute: bool,
    ) -> Option<(Vec<String>, Reach)> {
        let mut budget = BUDGET;
        self.classify_at(segments, absolute, 0, &mut budget)
    }

    fn classify_at(
        &mut self,
        segments: &[String],
        absolute: bool,
        depth: usize,
        budget: &mut usize,
    ) -> Option<(Vec<String>, Reach)> {
        for start in 0..segments.len() {
            let suffix = &segments[start..];
            if OWN.contains(&suffix[0].as_str()) || *budget == 0 {
                continue;
            }
            *budget -= 1;
            if (start > 0 || !absolute) && depth < MAX_DEPTH {
                for mut full in self.through_imports(&suffix[0]) {
                    full.extend(suffix[1..].iter().cloned());
                    if let Some(found) = self.classify_at(&full, false, depth + 1, budget) {
                        return Some(found);
                    }
                }
            }
            let written = self.renamed(suffix);
            if let Some(found) = reach(&written) {
                return Some((written, found));
            }
        }
        None
    }

    /// The paths the imports of `name` stand for, marking them used.
    fn through_imports(&mut self, name: &str) -> Vec<Vec<String>> {
        self.names.get_mut(name).map_or_else(Vec::new, |list| {
            list.iter_mut()
                .map(|import| {
                    import.used = true;
                    import.path.clone()
                })
                .collect()
        })
    }

    /// What a macro's path may stand for: as written and through each
    /// import of its first segment (Cargo renames applied).
    pub(super) fn macro_paths(&mut self, path: &syn::Path) -> Vec<Vec<String>> {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let mut paths = vec![self.renamed(&segments)];
        if let Some(first) = segments.first()
            && path.leading_colon.is_none()
        {
            for mut full in self.through_imports(first) {
                full.extend(segments[1..].iter().cloned());
                paths.push(self.renamed(&full));
            }
        }
        paths
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
        let import = Import {
            path,
            line,
            used: false,
        };
        self.names.entry(name).or_default().push(import);
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

    fn visit_item_extern_crate(&mut self, item: &'ast syn::ItemExternCrate) {
        // `extern crate std as s;` makes `s::…` mean `std::…`.
        let rename = item.rename.as_ref().map(|(_, name)| name);
        self.insert(&[], &item.ident, rename);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<String> {
        text.split("::").map(str::to_owned).collect()
    }

    fn classify(imports: &mut Imports, text: &str) -> Option<Vec<String>> {
        let parsed: syn::Path = syn::parse_str(text).ok()?;
        imports.classify(&parsed).map(|(path, _)| path)
    }

    #[test]
    fn uses_expand_paths() {
        let file: syn::File = syn::parse_str(
            "use std::{fs, env as e};\nuse std::process::Command;\nuse tokio::net::*;\nuse a::b::{self};\n",
        )
        .unwrap();
        let mut imports = Imports::of(&file, &BTreeMap::new());
        let resolved = classify(&mut imports, "Command::new");
        assert_eq!(resolved, Some(path("std::process::Command::new")));
        let resolved = classify(&mut imports, "e::var");
        assert_eq!(resolved, Some(path("std::env::var")));
        assert_eq!(classify(&mut imports, "crate::x"), None);
        assert!(imports.names["Command"][0].used && !imports.names["fs"][0].used);
        assert_eq!(imports.names["Command"][0].line, 2);
        assert_eq!(imports.names["b"][0].path, path("a::b"));
        assert_eq!(imports.globs, vec![(path("tokio::net"), 3)]);
    }

    #[test]
    fn suffixes_own_paths_extern_crates_and_several_imports_resolve() {
        let file: syn::File = syn::parse_str(
            "mod m { pub use std as s; }\nextern crate std as t;\n\
             use std::process::Command;\nmod n { use crate::Command; }\n\
             use crate::m::s::fs as f;\n",
        )
        .unwrap();
        let renames = BTreeMap::from([("net".to_owned(), "reqwest".to_owned())]);
        let mut imports = Imports::of(&file, &renames);
        for (written, resolved) in [
            ("m::s::process::Command::new", "std::process::Command::new"),
            ("self::s::process::Command", "std::process::Command"),
            ("crate::m::s::process::Command", "std::process::Command"),
            ("t::net::TcpStream", "std::net::TcpStream"),
            ("Command::new", "std::process::Command::new"),
            ("f::read", "std::fs::read"),
            ("net::get", "reqwest::get"),
            ("crate::x::std::env::var", "std::env::var"),
        ] {
            assert_eq!(
                classify(&mut imports, written),
                Some(path(resolved)),
                "{written}"
            );
        }
        assert_eq!(classify(&mut imports, "crate::m::helper"), None);
    }
}
