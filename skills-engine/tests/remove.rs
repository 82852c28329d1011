//! remove-skill, and skills applied together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::State;

#[test]
fn remove_after_apply_restores_the_files_and_keeps_the_owners_later_edits() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    let before_cargo = repo.read("Cargo.toml");
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    let a = repo
        .read("core/src/a.rs")
        .replace("a line 3\n", "a line 3 by the owner, later\n");
    repo.write("core/src/a.rs", &a);
    repo.commit("owner edit after the skill");

    let (branch, _) = committed(repo.engine().remove("demo").unwrap());
    assert_eq!(branch, "skill/remove-demo");
    let a = repo.read("core/src/a.rs");
    assert_eq!(
        a,
        lines(10, "a").replace("a line 3\n", "a line 3 by the owner, later\n")
    );
    assert!(!repo.root().join("core/src/demo.rs").exists());
    assert_eq!(repo.read("Cargo.toml"), before_cargo);
    assert!(State::load(repo.root()).unwrap().applied.is_empty());
    assert!(repo.clean());
}

#[test]
fn two_independent_skills_give_the_same_tree_in_either_order() {
    let tree_after = |first: &str, second: &str| {
        let repo = Repo::new();
        let base = upstream(&repo);
        // Both need variables, which go into the owner's .env.example.
        repo.write(".env.example", OWNERS_ENV);
        add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
        // `two` changes the first line instead.
        add_skill(&repo, "two", &base, "a line 10", TWO_ENV);
        repo.write(
            "skills/two/files/core/src/a.rs",
            &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
        );
        // And both add one dependency (which each records as its own).
        for name in ["one", "two"] {
            let path = format!("skills/{name}/skill.toml");
            let toml = repo.read(&path).replace(
                &format!("{{ {name}-dep = \"0.1\" }}"),
                &format!("{{ {name}-dep = \"0.1\", shared = \"2\" }}"),
            );
            repo.write(&path, &toml);
        }
        repo.commit("two skills");
        for name in [first, second] {
            committed(repo.engine().apply(name, false).unwrap());
            repo.git(&["checkout", "-q", "main"]);
            repo.git(&["merge", "-q", &format!("skill/{name}")]);
        }
        // Everything but the skill packages themselves (their `base` is a
        // commit id, which differs between the two repositories).
        let tree = repo
            .git(&["ls-tree", "-r", "HEAD"])
            .lines()
            .filter(|line| !line.contains("\tskills/"))
            .collect::<Vec<_>>()
            .join("\n");
        (tree, repo.read(".env.example"))
    };
    let (forward, forward_env) = tree_after("one", "two");
    let (backward, backward_env) = tree_after("two", "one");
    assert!(
        forward.contains(".pincer/skills.toml")
            && forward.contains("core/src/two.rs")
            && forward.contains("\t.env.example"),
        "{forward}"
    );
    assert_eq!(
        forward_env,
        format!("{OWNERS_ENV}\n{ONE_BLOCK}\n{TWO_BLOCK}")
    );
    assert_eq!(forward_env, backward_env);
    assert_eq!(forward, backward);
}

#[test]
fn remove_takes_out_only_the_cargo_entries_the_apply_added() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    // The owner uses the skill's dependency already, exactly as the skill has it.
    let owners = CARGO.replace("anyhow = \"1\"\n", "anyhow = \"1\"\ndemo-dep = \"0.1\"\n");
    repo.write("Cargo.toml", &owners);
    repo.commit("the owner's own demo-dep");
    committed(repo.engine().apply("demo", false).unwrap());
    assert_eq!(repo.read("Cargo.toml"), owners);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    committed(repo.engine().remove("demo").unwrap());
    assert_eq!(
        repo.read("Cargo.toml"),
        owners,
        "the owner's dependency survives"
    );
    assert!(!repo.root().join("core/src/demo.rs").exists());
}

#[test]
fn a_dependency_two_skills_add_goes_with_the_last_of_them() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", "");
    add_skill(&repo, "two", &base, "a line 10", "");
    repo.write(
        "skills/two/files/core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
    );
    for name in ["one", "two"] {
        let path = format!("skills/{name}/skill.toml");
        let toml = repo.read(&path).replace(
            &format!("{{ {name}-dep = \"0.1\" }}"),
            &format!("{{ {name}-dep = \"0.1\", shared = \"2\" }}"),
        );
        repo.write(&path, &toml);
    }
    repo.commit("two skills sharing a dependency");
    let round = |verb: &str, name: &str| {
        let outcome = if verb == "apply" {
            repo.engine().apply(name, false)
        } else {
            repo.engine().remove(name)
        };
        let (branch, _) = committed(outcome.unwrap());
        repo.git(&["checkout", "-q", "main"]);
        repo.git(&["merge", "-q", &branch]);
    };
    round("apply", "one");
    round("apply", "two");
    round("remove", "one");
    let cargo = repo.read("Cargo.toml");
    assert!(
        cargo.contains("shared = \"2\"") && cargo.contains("two-dep") && !cargo.contains("one-dep"),
        "{cargo}"
    );
    round("remove", "two");
    assert_eq!(repo.read("Cargo.toml"), CARGO);
}
