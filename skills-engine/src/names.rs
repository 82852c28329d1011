//! What a skill's name and an environment variable's name may be.

/// Skill names: lowercase letters, digits and `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A variable name as a shell and a dotenv loader take it: ASCII letters,
/// digits and `_`, not starting with a digit.
pub(crate) fn valid_variable(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
