//! What the engine's tests share: a repository driven with the real `git`,
//! an upstream to fork, skill packages to apply.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::Path;
use std::process::Command;

use pincer_skills::{ApplyOutcome, Engine};

/// A repository driven with the real `git`.
pub(crate) struct Repo {
    pub(crate) dir: tempfile::TempDir,
}

impl Repo {
    pub(crate) fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Owner"]);
        repo.git(&["config", "user.email", "owner@example.org"]);
        repo
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub(crate) fn write(&self, path: &str, content: &str) {
        let path = self.root().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub(crate) fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root().join(path)).unwrap()
    }

    pub(crate) fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    pub(crate) fn branch(&self) -> String {
        self.git(&["rev-parse", "--abbrev-ref", "HEAD"])
    }

    pub(crate) fn engine(&self) -> Engine {
        Engine::open(self.root()).unwrap()
    }

    pub(crate) fn clean(&self) -> bool {
        self.git(&["status", "--porcelain"]).is_empty()
    }
}

pub(crate) const CARGO: &str = "# The owner's workspace\n[workspace]\nmembers = [\"core\"] # keep this comment\n\n[dependencies]\n# alphabetical, please\nanyhow = \"1\"\nserde = \"1\"\n";

/// An owner's own `.env.example`.
pub(crate) const OWNERS_ENV: &str = "# the owner's settings\nPINCER_HOME=/srv/pincer\n";
/// The `env` of the skills `one` and `two`, and the blocks apply writes.
pub(crate) const ONE_ENV: &str = "env = [\"ONE_TOKEN\", \"ONE_URL\"]";
pub(crate) const ONE_BLOCK: &str = "# skill one (see skills/one/SKILL.md)\nONE_TOKEN=\nONE_URL=\n";
pub(crate) const TWO_ENV: &str = "env = [\"TWO_KEY\"]";
pub(crate) const TWO_BLOCK: &str = "# skill two (see skills/two/SKILL.md)\nTWO_KEY=\n";

pub(crate) fn lines(n: usize, tag: &str) -> String {
    (1..=n).map(|i| format!("{tag} line {i}\n")).collect()
}

/// An upstream with a core file and a Cargo.toml; returns the base commit.
pub(crate) fn upstream(repo: &Repo) -> String {
    repo.write("core/src/a.rs", &lines(10, "a"));
    repo.write("Cargo.toml", CARGO);
    repo.commit("upstream")
}

/// A skill that changes the last line of a.rs, adds b.rs and a dependency.
pub(crate) fn add_skill(repo: &Repo, name: &str, base: &str, last_line: &str, extra: &str) {
    let dir = format!("skills/{name}");
    let mut a = lines(10, "a");
    a = a.replace("a line 10\n", &format!("{last_line}\n"));
    repo.write(&format!("{dir}/files/core/src/a.rs"), &a);
    repo.write(
        &format!("{dir}/files/core/src/{name}.rs"),
        &format!("// added by {name}\n"),
    );
    repo.write(
        &format!("{dir}/SKILL.md"),
        &format!("---\nname: {name}\ndescription: test skill\n---\n# {name}\n"),
    );
    repo.write(
        &format!("{dir}/skill.toml"),
        &format!(
            "name = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test skill\"\nbase = \"{base}\"\n\
             adds = [\"core/src/{name}.rs\"]\nmodifies = [\"core/src/a.rs\"]\ntest = \"test -f core/src/{name}.rs\"\n{extra}\n\
             [[crate]]\nmanifest = \"Cargo.toml\"\ndependencies = {{ {name}-dep = \"0.1\" }}\n"
        ),
    );
}

pub(crate) fn committed(outcome: ApplyOutcome) -> (String, String) {
    match outcome {
        ApplyOutcome::Committed { branch, commit, .. } => (branch, commit),
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// Every ref (branches, HEAD's target, the engine's own refs), for "nothing changed".
pub(crate) fn refs(repo: &Repo) -> String {
    format!(
        "{}\nHEAD {}",
        repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        repo.git(&["symbolic-ref", "HEAD"])
    )
}

pub(crate) fn pending_exists(repo: &Repo) -> bool {
    repo.root().join(".git/pincer-skill-pending.toml").exists()
}

/// A skill package `name` (SKILL.md and skill.toml) with these manifest lines.
pub(crate) fn package(repo: &Repo, name: &str, base: &str, lines: &str) {
    repo.write(&format!("skills/{name}/SKILL.md"), &format!("# {name}\n"));
    repo.write(
        &format!("skills/{name}/skill.toml"),
        &format!(
            "name = \"{name}\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"{base}\"\n{lines}\n"
        ),
    );
}

/// Applies (or removes) `name` and merges its review branch into main.
pub(crate) fn land(repo: &Repo, verb: &str, name: &str) {
    let outcome = if verb == "apply" {
        repo.engine().apply(name, false)
    } else {
        repo.engine().remove(name, false)
    };
    let (branch, _) = committed(outcome.unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", &branch]);
}

/// The host crate's registry file, with the block skills register their
/// lines in.
pub(crate) const REGISTRY: &str = "//! The skills linked into this build.\n\npub fn register(registry: &mut Registry) {\n    // apply-skill: begin\n    // apply-skill: end\n}\n";

/// The host crate's manifest.
pub(crate) const HOST_CARGO: &str =
    "[package]\nname = \"host\"\nversion = \"0.1.0\"\n\n[dependencies]\nanyhow = \"1\"\n";

/// An upstream whose skills are crates in place, linked into a host crate;
/// returns the base commit.
pub(crate) fn host_upstream(repo: &Repo) -> String {
    repo.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"host\", \"skills/*\"]\n",
    );
    repo.write("host/Cargo.toml", HOST_CARGO);
    repo.write("host/src/skills.rs", REGISTRY);
    repo.write("host/src/main.rs", "fn main() {}\n");
    repo.commit("upstream")
}

/// The line the skill `name` registers (`crate_skill`).
pub(crate) fn registry_line(name: &str) -> String {
    format!("{}_skill::register(registry);", name.replace('-', "_"))
}

/// A skill that is a crate in place (`<name>-skill`): applying it links it
/// (a dependency of the host, a line in its registry); `extra`: more
/// top-level keys of its skill.toml.
pub(crate) fn crate_skill(repo: &Repo, name: &str, base: &str, extra: &str) {
    let dir = format!("skills/{name}");
    repo.write(
        &format!("{dir}/Cargo.toml"),
        &format!("[package]\nname = \"{name}-skill\"\nversion = \"0.1.0\"\n\n[dependencies]\n"),
    );
    repo.write(
        &format!("{dir}/src/lib.rs"),
        "//! A skill.\n\npub fn register(_registry: &mut ()) {}\n",
    );
    repo.write(
        &format!("{dir}/tests/{name}.rs"),
        "#[test]\nfn works() {}\n",
    );
    repo.write(&format!("{dir}/SKILL.md"), &format!("# {name}\n"));
    repo.write(
        &format!("{dir}/skill.toml"),
        &format!(
            "name = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"a crate\"\nbase = \"{base}\"\n{extra}\n\
             [[crate]]\nmanifest = \"host/Cargo.toml\"\ndependencies = {{ {name}-skill = {{ path = \"../skills/{name}\" }} }}\n\n\
             [[register]]\nfile = \"host/src/skills.rs\"\nline = \"{}\"\n",
            registry_line(name)
        ),
    );
}
