//! The scan of one source file: a `syn` visitor that reports processes,
//! network, file system, environment, unsafe code, included files and
//! registration points, each with its line, and whether the skill's
//! `[capabilities]` cover it.
//!
//! Items under `#[cfg(test)]` (and `#[test]` functions) are skipped: like
//! `tests/`, they never link into the owner's binary.
//!
//! Macros are read in `macros`. Attributes are not visited as code: a doc
//! comment naming a host is not a use of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use syn::visit::{self, Visit};
use syn::{Expr, Lit};

use super::declared::Capabilities;
use super::literals;
use super::resolve::{Imports, Reach, reach_import, test_only};
use super::{Finding, Kind};

/// Method calls that register something, and the point each registers at.
const REGISTRATIONS: &[(&str, &str)] = &[
    ("add_channel", "channel"),
    ("add_provider", "provider"),
    ("add_doctor_check", "doctor"),
    ("add_runtime", "runtime"),
];

/// Attributes that export or link native symbols: FFI.
const FFI_ATTRIBUTES: &[&str] = &["no_mangle", "link", "export_name", "link_section"];

/// What the scan judges findings against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Declared<'a> {
    /// The `[capabilities]` table.
    pub(crate) capabilities: &'a Capabilities,
    /// The manifest's top-level `env`.
    pub(crate) manifest_env: &'a [String],
    /// The skill's folder, relative to the root (`skills/x`): an included
    /// file inside it is declared.
    pub(crate) skill_dir: &'a str,
}

/// What the scan knows of the skill beyond one file.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// The skill's Cargo renames: dependency name → the crate it is.
    pub(crate) renames: BTreeMap<String, String>,
    /// Every file the scan reads (relative to the root): code included
    /// from one of them was scanned.
    pub(crate) scanned: BTreeSet<String>,
    /// The root on disk, to tell a symlink an `include_str!` reads through;
    /// `None` when scanning text alone.
    pub(crate) root: Option<PathBuf>,
}

/// Scans one parsed file; `file` is its path relative to the root.
#[cfg(test)]
pub(crate) fn scan_file(declared: Declared<'_>, file: &str, ast: &syn::File) -> Vec<Finding> {
    scan_file_in(declared, &Context::default(), file, ast)
}

/// Scans one parsed file of a skill whose other files are `context`.
pub(crate) fn scan_file_in(
    declared: Declared<'_>,
    context: &Context,
    file: &str,
    ast: &syn::File,
) -> Vec<Finding> {
    let mut scan = FileScan {
        declared,
        context,
        file: file.to_owned(),
        imports: Imports::of(ast, &context.renames),
        findings: BTreeSet::new(),
    };
    scan.visit_file(ast);
    scan.unused_imports();
    scan.findings.into_iter().collect()
}

/// The visitor's state for one file.
pub(super) struct FileScan<'a> {
    pub(super) declared: Declared<'a>,
    pub(super) context: &'a Context,
    pub(super) file: String,
    pub(super) imports: Imports,
    pub(super) findings: BTreeSet<Finding>,
}

impl FileScan<'_> {
    pub(super) fn push(
        &mut self,
        kind: Kind,
        line: usize,
        what: impl Into<String>,
        declared: bool,
    ) {
        self.findings.insert(Finding {
            kind,
            file: self.file.clone(),
            line,
            what: what.into(),
            declared,
        });
    }

    /// A path that reaches something (outside a call the scan reads).
    pub(super) fn push_reach(&mut self, line: usize, found: Reach, path: &[String]) {
        let caps = self.declared.capabilities;
        let env = self.declared.manifest_env;
        match found {
            Reach::Process(root) => self.push(Kind::Process, line, root, caps.allows_program(None)),
            Reach::EnvVar => {
                self.push(Kind::Env, line, "std::env::var", caps.allows_env(None, env))
            }
            Reach::EnvVars => {
                self.push(
                    Kind::Env,
                    line,
                    "std::env::vars",
                    caps.allows_env(None, env),
                );
            }
            Reach::Other(kind) => {
                let declared = match kind {
                    Kind::Network => !caps.network.is_empty(),
                    Kind::Fs => !caps.files.is_empty(),
                    _ => false,
                };
                self.push(kind, line, path.join("::"), declared);
            }
        }
    }

    /// The `use` items nothing later went through (and glob imports, which
    /// cannot be followed): reported themselves, so no finding is lost.
    fn unused_imports(&mut self) {
        let unused: Vec<(Vec<String>, usize)> = self
            .imports
            .names
            .values()
            .flatten()
            .filter(|import| !import.used)
            .map(|import| (import.path.clone(), import.line))
            .chain(self.imports.globs.iter().cloned())
            .collect();
        for (path, line) in unused {
            let path = self.imports.renamed(&path);
            if let Some(found) = reach_import(&path) {
                self.push_reach(line, found, &path);
            }
        }
    }

    /// A string literal that names a host or a path.
    pub(super) fn literal(&mut self, value: &str, line: usize) {
        let caps = self.declared.capabilities;
        if let Some(host) = literals::host(value) {
            let declared = caps.allows_host(&host);
            self.push(Kind::Url, line, host, declared);
        } else if literals::fs_path(value) {
            self.push(Kind::Fs, line, value, caps.allows_path(value));
        }
    }

    /// `Command::new(..)` and `std::env::var(..)`: the finding names the
    /// program or variable when it is a literal. False for other calls.
    fn special_call(&mut self, call: &syn::ExprCall) -> bool {
        let Expr::Path(callee) = &*call.func else {
            return false;
        };
        let Some((path, found)) = self.imports.classify(&callee.path) else {
            return false;
        };
        let line = first_line(&callee.path);
        let literal = call.args.first().and_then(string_literal);
        let caps = self.declared.capabilities;
        match Some(found) {
            Some(Reach::Process(root)) if path.ends_with(&["Command".into(), "new".into()]) => {
                let declared = caps.allows_program(literal.as_deref());
                self.push(
                    Kind::Process,
                    line,
                    literal.clone().unwrap_or(root),
                    declared,
                );
            }
            Some(Reach::EnvVar) => {
                let declared = caps.allows_env(literal.as_deref(), self.declared.manifest_env);
                let what = literal.clone().unwrap_or_else(|| "std::env::var".into());
                self.push(Kind::Env, line, what, declared);
            }
            _ => return false,
        }
        // The literal is the program or the variable, not a path or a host.
        let skip = usize::from(literal.is_some());
        for arg in call.args.iter().skip(skip) {
            self.visit_expr(arg);
        }
        true
    }
}

impl<'ast> Visit<'ast> for FileScan<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !test_only(item) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, _: &'ast syn::ItemUse) {
        // Collected before the visit; reported by `unused_imports`.
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        let line = attr.pound_token.span.start().line;
        let unsafe_code = self.declared.capabilities.unsafe_code;
        let path = attr.path();
        if let Some(name) = FFI_ATTRIBUTES.iter().find(|name| path.is_ident(name)) {
            self.push(Kind::Unsafe, line, format!("#[{name}]"), unsafe_code);
        } else if path.is_ident("unsafe") {
            let inner = match &attr.meta {
                syn::Meta::List(list) => list.tokens.to_string(),
                _ => String::new(),
            };
            self.push(
                Kind::Unsafe,
                line,
                format!("#[unsafe({inner})]"),
                unsafe_code,
            );
        } else if path.is_ident("path")
            && let syn::Meta::NameValue(value) = &attr.meta
            && let Some(file) = string_literal(&value.value)
        {
            self.include_code(&file, line);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some((resolved, found)) = self.imports.classify(path) {
            self.push_reach(first_line(path), found, &resolved);
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if !self.special_call(call) {
            visit::visit_expr_call(self, call);
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let method = call.method.to_string();
        if let Some((_, point)) = REGISTRATIONS.iter().find(|(name, _)| *name == method) {
            let declared = self
                .declared
                .capabilities
                .registers
                .iter()
                .any(|r| r == point);
            self.push(
                Kind::Register,
                call.method.span().start().line,
                *point,
                declared,
            );
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_macro(mac);
    }

    fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
        self.literal(&lit.value(), lit.span().start().line);
    }

    fn visit_expr_unsafe(&mut self, block: &'ast syn::ExprUnsafe) {
        let line = block.unsafe_token.span.start().line;
        let declared = self.declared.capabilities.unsafe_code;
        self.push(Kind::Unsafe, line, "unsafe block", declared);
        visit::visit_expr_unsafe(self, block);
    }

    fn visit_signature(&mut self, sig: &'ast syn::Signature) {
        if let Some(token) = &sig.unsafety {
            let declared = self.declared.capabilities.unsafe_code;
            let what = format!("unsafe fn {}", sig.ident);
            self.push(Kind::Unsafe, token.span.start().line, what, declared);
        }
        visit::visit_signature(self, sig);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if let Some(token) = &item.unsafety {
            let declared = self.declared.capabilities.unsafe_code;
            self.push(
                Kind::Unsafe,
                token.span.start().line,
                "unsafe impl",
                declared,
            );
        }
        visit::visit_item_impl(self, item);
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        if let Some(token) = &item.unsafety {
            let declared = self.declared.capabilities.unsafe_code;
            let what = format!("unsafe trait {}", item.ident);
            self.push(Kind::Unsafe, token.span.start().line, what, declared);
        }
        visit::visit_item_trait(self, item);
    }

    fn visit_item_foreign_mod(&mut self, item: &'ast syn::ItemForeignMod) {
        let line = item.abi.extern_token.span.start().line;
        let abi = item
            .abi
            .name
            .as_ref()
            .map_or("C".into(), syn::LitStr::value);
        let declared = self.declared.capabilities.unsafe_code;
        self.push(
            Kind::Unsafe,
            line,
            format!("extern {abi:?} block"),
            declared,
        );
        visit::visit_item_foreign_mod(self, item);
    }
}

/// The line of a path's first segment.
pub(super) fn first_line(path: &syn::Path) -> usize {
    path.segments
        .first()
        .map_or(0, |segment| segment.ident.span().start().line)
}

/// The value of an expression that is a string literal.
pub(super) fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Some(text.value()),
        _ => None,
    }
}
