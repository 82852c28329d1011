//! The capability report: what a skill declares and what was found, for
//! people (`render`) and for programs (`to_json`).
//!
//! The rendering, stable:
//!
//! ```text
//! capabilities of <skill> <version>: <N> found, <M> undeclared
//!   declares  network    api.telegram.org
//!   declares  env        TELEGRAM_API_URL
//!   declares  why        <free text>
//!   undeclared  process   skills/x/src/lib.rs:12  sh
//!   declared    network   skills/x/src/lib.rs:3  hyper_util::client::legacy::Client
//! ```
//!
//! The header; then one `declares` line per non-empty key of
//! `[capabilities]` (in the table's order: network, processes, files, env,
//! unsafe, registers, build, why; list entries joined by `, `), or
//! `  declares  nothing`; then one line per finding, undeclared ones first,
//! sorted by (declared, kind, file, line, what): the status padded to 10,
//! the kind padded to 9, `file:line` (`file` alone when the line is 0) and
//! what was found.
//!
//! The JSON (`to_json`), stable:
//!
//! ```text
//! { "skill": "x", "version": "1.0.0",
//!   "declared": { "network": [..], "processes": [..], "files": [..], "env": [..],
//!                 "unsafe": false, "registers": [..], "build": [..], "why": ".." },
//!   "findings": [ { "kind": "process", "file": "skills/x/src/lib.rs",
//!                   "line": 12, "what": "sh", "declared": false } ],
//!   "undeclared": 1 }
//! ```
//!
//! `kind` is one of `process`, `network`, `url`, `fs`, `env`, `unsafe`,
//! `include`, `register`, `build`; findings are in the rendering's order.

use serde::Serialize;

use super::Finding;
use super::declared::Capabilities;

/// What a skill declares and what its code was found to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilityReport {
    /// The skill's name.
    pub skill: String,
    /// Its version.
    pub version: String,
    /// Its `[capabilities]`.
    pub declared: Capabilities,
    /// What was found, sorted (undeclared first; see the module's doc).
    pub findings: Vec<Finding>,
}

impl CapabilityReport {
    /// A report, its findings sorted, one per (kind, what, file, line).
    pub fn new(
        skill: &str,
        version: &str,
        declared: Capabilities,
        mut findings: Vec<Finding>,
    ) -> Self {
        // One finding per (kind, what, file, line): undeclared wins a tie.
        findings.sort();
        findings.dedup_by(|b, a| {
            (a.kind, &a.file, a.line, &a.what) == (b.kind, &b.file, b.line, &b.what)
        });
        findings.sort_by(|a, b| {
            (a.declared, a.kind, &a.file, a.line, &a.what)
                .cmp(&(b.declared, b.kind, &b.file, b.line, &b.what))
        });
        Self {
            skill: skill.to_owned(),
            version: version.to_owned(),
            declared,
            findings,
        }
    }

    /// The findings its declarations do not cover.
    pub fn undeclared(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| !f.declared).collect()
    }

    /// The human rendering (format in the module's doc), ending in a newline.
    pub fn render(&self) -> String {
        let mut out = format!(
            "capabilities of {} {}: {} found, {} undeclared\n",
            self.skill,
            self.version,
            self.findings.len(),
            self.undeclared().len()
        );
        for line in declared_lines(&self.declared) {
            out.push_str(&line);
            out.push('\n');
        }
        for finding in &self.findings {
            let status = if finding.declared {
                "declared"
            } else {
                "undeclared"
            };
            out.push_str(&format!(
                "  {status:<10}  {:<9} {}  {}\n",
                finding.kind.name(),
                visible(&finding.location()),
                visible(&finding.what)
            ));
        }
        out
    }

    /// The JSON (shape in the module's doc), pretty-printed.
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "skill": self.skill,
            "version": self.version,
            "declared": self.declared,
            "findings": self.findings,
            "undeclared": self.undeclared().len(),
        });
        // A `Value` always serializes; the fallback keeps this infallible.
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
    }
}

impl std::fmt::Display for CapabilityReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// The `declares` lines.
fn declared_lines(caps: &Capabilities) -> Vec<String> {
    if caps.is_empty() {
        return vec!["  declares  nothing".to_owned()];
    }
    let lists = [
        ("network", &caps.network),
        ("processes", &caps.processes),
        ("files", &caps.files),
        ("env", &caps.env),
    ];
    let mut out: Vec<String> = lists
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(key, list)| format!("  declares  {key:<10} {}", visible(&list.join(", "))))
        .collect();
    if caps.unsafe_code {
        out.push(format!("  declares  {:<10} yes", "unsafe"));
    }
    for (key, list) in [("registers", &caps.registers), ("build", &caps.build)] {
        if !list.is_empty() {
            out.push(format!(
                "  declares  {key:<10} {}",
                visible(&list.join(", "))
            ));
        }
    }
    if !caps.why.trim().is_empty() {
        let why = caps.why.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push(format!("  declares  {:<10} {}", "why", visible(&why)));
    }
    out
}

/// Text the skill's author wrote (a literal, a path, a declaration), as the
/// report shows it: control characters escaped, so that no string of theirs
/// can move the cursor, hide a line or forge one (`\n  declared …`) on
/// the owner's terminal or in the commit message.
fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    #[test]
    fn what_the_author_wrote_cannot_forge_or_hide_a_line() {
        let caps = Capabilities {
            why: "\u{1b}[8mhidden".into(),
            ..Capabilities::default()
        };
        let report = CapabilityReport::new(
            "x",
            "1",
            caps,
            vec![finding(
                Kind::Include,
                3,
                "a\n  declared    process   forged",
                false,
            )],
        );
        let text = report.render();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("a\\n  declared"), "{text}");
    }

    fn finding(kind: Kind, line: usize, what: &str, declared: bool) -> Finding {
        Finding {
            kind,
            file: "skills/x/src/lib.rs".into(),
            line,
            what: what.into(),
            declared,
        }
    }

    #[test]
    fn rendering_and_json_are_stable() {
        let declared = Capabilities {
            network: vec!["example.com".into()],
            why: "it posts\n  things".into(),
            ..Capabilities::default()
        };
        let report = CapabilityReport::new(
            "x",
            "1.0.0",
            declared,
            vec![
                finding(Kind::Network, 3, "std::net::TcpStream", true),
                finding(Kind::Process, 12, "sh", false),
                finding(Kind::Process, 12, "sh", true),
                Finding {
                    kind: Kind::BuildTime,
                    file: "Cargo.lock".into(),
                    line: 0,
                    what: "dep (build script)".into(),
                    declared: false,
                },
            ],
        );
        assert_eq!(
            report.render(),
            "capabilities of x 1.0.0: 3 found, 2 undeclared\n\
             \x20 declares  network    example.com\n\
             \x20 declares  why        it posts things\n\
             \x20 undeclared  process   skills/x/src/lib.rs:12  sh\n\
             \x20 undeclared  build     Cargo.lock  dep (build script)\n\
             \x20 declared    network   skills/x/src/lib.rs:3  std::net::TcpStream\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["undeclared"], 2);
        assert_eq!(json["declared"]["unsafe"], false);
        assert_eq!(json["declared"]["network"][0], "example.com");
        assert_eq!(
            json["findings"][0],
            serde_json::json!({"kind": "process", "file": "skills/x/src/lib.rs",
                "line": 12, "what": "sh", "declared": false})
        );
        assert_eq!(json["findings"][1]["kind"], "build");
        let empty = CapabilityReport::new("y", "2", Capabilities::default(), Vec::new());
        assert_eq!(
            empty.render(),
            "capabilities of y 2: 0 found, 0 undeclared\n  declares  nothing\n"
        );
    }
}
