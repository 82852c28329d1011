//! Macros: `env!`/`option_env!` and the `include` family (also under an
//! alias: `use std::include_str as inc;`), and the bodies of the others.
//!
//! A body is read as comma-separated expressions when it parses as such
//! (`format!`, `println!`, `vec!`). Otherwise (`macro_rules!`,
//! `lazy_static!`, `tokio::select!`) its tokens are walked: string
//! literals, `a::b` paths (resolved like any path) and the `unsafe`
//! keyword, so that code hidden in a body that is not an expression is
//! still seen.

use std::path::Path;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, Lit, Token};

use super::Kind;
use super::scan::{FileScan, first_line, string_literal};
use super::sources::resolve_relative;

/// The macros read specially, wherever their path leads.
const SPECIAL: &[&str] = &[
    "env",
    "option_env",
    "include",
    "include_str",
    "include_bytes",
];

/// The special macro a resolved macro path names: itself alone, or under
/// `std`/`core`.
fn special_name(path: &[String]) -> Option<&'static str> {
    let plain = match path {
        [_] => true,
        [root, _] => root == "std" || root == "core",
        _ => false,
    };
    let last = path.last()?;
    SPECIAL.iter().copied().find(|name| plain && last == name)
}

impl FileScan<'_> {
    /// A macro invocation: a special one, or its path and body.
    pub(super) fn scan_macro(&mut self, mac: &syn::Macro) {
        let special = self
            .imports
            .macro_paths(&mac.path)
            .iter()
            .find_map(|path| special_name(path));
        if let Some(name) = special {
            self.special_macro(mac, name);
            return;
        }
        self.visit_path(&mac.path);
        match mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            Ok(args) => args.iter().for_each(|arg| self.visit_expr(arg)),
            Err(_) => self.token_stream(&mac.tokens),
        }
    }

    /// `env!`/`option_env!` (read at build time) and the `include` macros.
    fn special_macro(&mut self, mac: &syn::Macro, name: &str) {
        let line = first_line(&mac.path);
        let first = mac
            .parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            .ok()
            .and_then(|args| args.first().and_then(string_literal));
        let written = || format!("{name}!({})", mac.tokens);
        match (name, first) {
            ("env" | "option_env", first) => {
                let env = self.declared.manifest_env;
                let declared = self.declared.capabilities.allows_env(first.as_deref(), env);
                self.push(Kind::Env, line, first.unwrap_or_else(written), declared);
            }
            ("include", Some(path)) => self.include_code(&path, line),
            (_, Some(path)) => self.include_data(&path, line),
            (_, None) => self.push(Kind::Include, line, written(), false),
        }
    }

    /// `path` from the including file's folder, relative to the root.
    fn included(&self, path: &str) -> Option<String> {
        let dir = self.file.rsplit_once('/').map_or("", |(dir, _)| dir);
        resolve_relative(dir, path)
    }

    /// Code pulled in by path (`include!`, `#[path]`): declared only when
    /// it is a `.rs` file the scan reads, so that its code was scanned.
    pub(super) fn include_code(&mut self, path: &str, line: usize) {
        let scanned = self
            .included(path)
            .is_some_and(|p| p.ends_with(".rs") && self.context.scanned.contains(&p));
        self.push(Kind::Include, line, path, scanned);
    }

    /// Data pulled in by path (`include_str!`, `include_bytes!`): declared
    /// when it stays in the skill's folder and reads through no symlink
    /// (whose target could be anywhere).
    fn include_data(&mut self, path: &str, line: usize) {
        let inside = self.included(path).is_some_and(|p| {
            p.starts_with(&format!("{}/", self.declared.skill_dir))
                && !self
                    .context
                    .root
                    .as_deref()
                    .is_some_and(|root| through_symlink(root, &p))
        });
        self.push(Kind::Include, line, path, inside);
    }

    /// A token stream that is not expressions: its string literals, its
    /// paths and its `unsafe` keywords.
    fn token_stream(&mut self, tokens: &TokenStream) {
        let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
        let mut at = 0;
        while let Some(tree) = trees.get(at) {
            at += 1;
            match tree {
                TokenTree::Group(group) => self.token_stream(&group.stream()),
                TokenTree::Literal(literal) => {
                    let line = literal.span().start().line;
                    if let Ok(Lit::Str(text)) = syn::parse2::<Lit>(tree.clone().into()) {
                        self.literal(&text.value(), line);
                    }
                }
                TokenTree::Ident(ident) if ident == "unsafe" => {
                    let declared = self.declared.capabilities.unsafe_code;
                    let line = ident.span().start().line;
                    self.push(Kind::Unsafe, line, "unsafe in a macro body", declared);
                }
                TokenTree::Ident(ident) => {
                    let (segments, next) = token_path(&trees, at - 1);
                    at = next;
                    let line = ident.span().start().line;
                    if let Some((path, found)) = self.imports.classify_segments(&segments, false) {
                        self.push_reach(line, found, &path);
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }
}

/// The `a::b::c` path starting at the identifier `trees[start]`, and the
/// index after it.
fn token_path(trees: &[TokenTree], start: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    if let Some(TokenTree::Ident(ident)) = trees.get(start) {
        segments.push(ident.to_string());
    }
    let mut at = start + 1;
    loop {
        let colons = matches!(trees.get(at), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
            && matches!(trees.get(at + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
        match trees.get(at + 2) {
            Some(TokenTree::Ident(ident)) if colons && ident != "unsafe" => {
                segments.push(ident.to_string());
                at += 3;
            }
            _ => return (segments, at),
        }
    }
}

/// Whether `relative` (under `root`), or any folder on the way to it, is a
/// symlink.
fn through_symlink(root: &Path, relative: &str) -> bool {
    let mut path = root.to_path_buf();
    relative.split('/').any(|part| {
        path.push(part);
        std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink())
    })
}
