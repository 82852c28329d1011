//! `new-skill`: a package scaffolded from a fork's changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn new_skill_scaffolds_a_package_that_applies_back() {
    let repo = Repo::new();
    let base = upstream(&repo);
    repo.git(&["branch", "upstream"]);
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 7\n", "a line 7, feature\n"),
    );
    repo.write("core/src/feature.rs", "pub fn feature() {}\n");
    // Its variables, in .env.example: they become the skill's `env`.
    repo.write(
        ".env.example",
        "# the feature\nFEATURE_KEY=\nexport FEATURE_URL=https://example.org\n",
    );
    repo.commit("a feature");
    let dir = repo.engine().new_skill("feature", &base).unwrap();
    let manifest = std::fs::read_to_string(dir.join("skill.toml")).unwrap();
    assert!(
        manifest.contains("adds = [\"core/src/feature.rs\"]")
            && manifest.contains("modifies = [\"core/src/a.rs\"]")
            && manifest.contains("env = [\"FEATURE_KEY\", \"FEATURE_URL\"]"),
        "{manifest}"
    );
    assert!(!dir.join("files/.env.example").exists());
    assert!(dir.join("SKILL.md").exists() && dir.join("base/core/src/a.rs").exists());
    assert!(
        repo.engine()
            .new_skill("feature", &base)
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    let toml = manifest.replace("test = \"cargo test --workspace\"", "test = \"true\"");
    std::fs::write(dir.join("skill.toml"), toml).unwrap();
    repo.commit("package the feature as a skill");

    // Applied to a fork at the base, it gives the feature.
    repo.git(&["checkout", "-q", "-b", "fresh", "upstream"]);
    repo.git(&["checkout", "-q", "main", "--", "skills"]);
    repo.commit("bring the skill");
    committed(repo.engine().apply("feature", true).unwrap());
    assert!(repo.read("core/src/a.rs").contains("a line 7, feature"));
    assert_eq!(repo.read("core/src/feature.rs"), "pub fn feature() {}\n");
    assert_eq!(
        repo.read(".env.example"),
        "# skill feature (see skills/feature/SKILL.md)\nFEATURE_KEY=\nFEATURE_URL=\n"
    );
}
