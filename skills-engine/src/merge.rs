//! File-level three-way merges (libgit2's, the same xdiff as `git merge-file`).

/// A merged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The result, with conflict markers where the sides disagree.
    pub content: Vec<u8>,
    /// Whether there are conflicts.
    pub conflicted: bool,
}

/// The labels of the conflict markers: `<<<<<<< fork`, `>>>>>>> skill`.
pub const OURS_LABEL: &str = "fork";
/// The label of the base.
pub const BASE_LABEL: &str = "base";
/// The label of the skill's side.
pub const THEIRS_LABEL: &str = "skill";

/// A first line given to all three sides and taken off the result. git2's
/// `MergeFileResult::content` builds a slice from libgit2's pointer, which is
/// null for an empty result; a common first line keeps every result
/// non-empty. Being the same on all sides, it is never part of a change (the
/// property test against `git merge-file` holds us to that).
const GUARD: &[u8] = b"\x01pincer-merge-guard\n";

/// Merges `ours` and `theirs`, both descended from `base`.
pub fn merge3(base: &[u8], ours: &[u8], theirs: &[u8], path: &str) -> Result<Merged, git2::Error> {
    // `git2::merge_file` does not initialise libgit2 (most of git2's entry
    // points do): called first in a process, it fails with "no error".
    // Hashing an object is the cheapest call that initialises it.
    git2::Oid::hash_object(git2::ObjectType::Blob, GUARD)?;
    let guarded = |content: &[u8]| [GUARD, content].concat();
    let (base, ours, theirs) = (guarded(base), guarded(ours), guarded(theirs));
    let input = |content| {
        let mut input = git2::MergeFileInput::new();
        input.content(content).path(path);
        input
    };
    let (base, ours, theirs) = (input(&base[..]), input(&ours[..]), input(&theirs[..]));
    let mut options = git2::MergeFileOptions::new();
    options
        .ancestor_label(BASE_LABEL)
        .our_label(OURS_LABEL)
        .their_label(THEIRS_LABEL);
    let result = git2::merge_file(&base, &ours, &theirs, Some(&mut options))?;
    let content = result
        .content()
        .strip_prefix(GUARD)
        .ok_or_else(|| git2::Error::from_str("the merge lost its guard line"))?
        .to_vec();
    Ok(Merged {
        content,
        conflicted: !result.is_automergeable(),
    })
}

/// Whether a text still has conflict markers.
pub(crate) fn has_markers(content: &[u8]) -> bool {
    content.split(|&b| b == b'\n').any(|line| {
        line.starts_with(b"<<<<<<< ") || line.starts_with(b">>>>>>> ") || line == b"======="
    })
}
