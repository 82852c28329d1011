//! Group names: the unit of trust, of folders and of containers.
//!
//! A name is also a folder name on the host, so it is validated before it is
//! used anywhere: `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`, and `global` is reserved
//! for the shared memory folder. Names are case-insensitive and kept folded
//! to lowercase: `Main` is `main` (and so trusted), and `Family` and `family`
//! can never be two groups sharing one folder on a case-insensitive file
//! system.

use std::fmt;

/// The owner's private, trusted group.
pub const MAIN_GROUP: &str = "main";

/// A name that is not a valid group name.
#[derive(Debug, thiserror::Error)]
#[error("invalid group name {name:?}: {reason}")]
pub struct InvalidGroupName {
    name: String,
    reason: &'static str,
}

/// A validated group name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    /// Validates `name` and folds it to lowercase.
    pub fn new(name: &str) -> Result<Self, InvalidGroupName> {
        let invalid = |reason| InvalidGroupName {
            name: name.to_owned(),
            reason,
        };
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(invalid("it is empty")),
            Some(first) if !first.is_ascii_alphanumeric() => {
                return Err(invalid("it must start with a letter or a digit"));
            }
            Some(_) => {}
        }
        if name.len() > 64 {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("only letters, digits, '_' and '-' are allowed"));
        }
        if name.eq_ignore_ascii_case("global") {
            return Err(invalid("`global` is reserved for the shared memory folder"));
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    /// The owner's main group.
    pub fn main() -> Self {
        Self(MAIN_GROUP.to_owned())
    }

    /// Whether this is the trusted main group.
    pub fn is_main(&self) -> bool {
        self.0 == MAIN_GROUP
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for GroupName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for GroupName {
    type Err = InvalidGroupName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in ["main", "family", "team-7", "a_b", "0", &"x".repeat(64)] {
            assert!(GroupName::new(name).is_ok(), "{name}");
        }
        assert!(GroupName::new("main").unwrap().is_main());
        for main in ["Main", "MAIN", "mAiN"] {
            let name = GroupName::new(main).unwrap();
            assert!(name.is_main(), "{main}");
            assert_eq!(name, GroupName::main());
        }
        assert_eq!(GroupName::new("Family").unwrap().as_str(), "family");
    }

    #[test]
    fn rejects_names_that_could_be_paths() {
        for name in [
            "",
            "..",
            ".",
            "a/b",
            "../main",
            "-x",
            "_x",
            "a b",
            "a\0b",
            "global",
            "GLOBAL",
            "é",
            &"x".repeat(65),
            "a:b",
            "a\nb",
        ] {
            assert!(GroupName::new(name).is_err(), "{name:?}");
        }
    }
}
