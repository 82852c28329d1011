//! `/changes …` in the main chat: the owner decides from the chat as from
//! the terminal. Only the main group's chat is the owner's; the same words
//! anywhere else are a message like any other, for the agent.

use pincer_store::{Decision, Store};

use super::{ChangesError, Said};

/// The word that starts an owner command.
pub const COMMAND: &str = "/changes";

const USAGE: &str = "/changes — what waits; /changes show ID; /changes accept ID [PATH…]; \
                     /changes reject ID [PATH…]; /changes approve ID; /changes refuse ID";

/// The answer to `text` when it is an owner command (`None`: it is not one).
pub fn owner_command(store: &Store, text: &str) -> Option<Result<Said, ChangesError>> {
    let mut words = text.split_whitespace();
    if words.next() != Some(COMMAND) {
        return None;
    }
    let verb = words.next();
    let id = words.next().map(str::parse::<i64>);
    let paths: Vec<String> = words.map(str::to_owned).collect();
    Some(match (verb, id) {
        (None, None) => super::list(store, None, false).map(Said::Done),
        (Some("show"), Some(Ok(id))) if paths.is_empty() => super::show(store, id),
        (Some("accept"), Some(Ok(id))) => super::decide(store, id, &paths, Decision::Accepted),
        (Some("reject"), Some(Ok(id))) => super::decide(store, id, &paths, Decision::Rejected),
        (Some("approve"), Some(Ok(id))) if paths.is_empty() => {
            super::answer_access(store, id, true)
        }
        (Some("refuse"), Some(Ok(id))) if paths.is_empty() => {
            super::answer_access(store, id, false)
        }
        _ => Ok(Said::Usage(format!("usage: {USAGE}"))),
    })
}
