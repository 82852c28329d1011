//! `/changes …` in the main chat: the owner decides from the chat as from
//! the terminal. Only the main group's chat is the owner's; the same words
//! anywhere else are a message like any other, for the agent.

use pincer_store::{Decision, Store};

use super::{ChangesError, Said};

/// The word that starts an owner command.
pub const COMMAND: &str = "/changes";

const USAGE: &str = "/changes — what waits; /changes show ID; /changes accept ID [PATH…]; \
                     /changes reject ID [PATH…] (a PATH ending in / names everything below it; \
                     quote one with spaces); /changes approve ID; /changes refuse ID";

/// The longest answer the chat gets; the terminal has the rest.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The answer to `text` when it is an owner command (`None`: it is not one).
pub fn owner_command(store: &Store, text: &str) -> Option<Result<Said, ChangesError>> {
    let mut words = words(text).into_iter();
    if words.next().as_deref() != Some(COMMAND) {
        return None;
    }
    let verb = words.next();
    let id = words.next().map(|id| id.parse::<i64>());
    let paths: Vec<String> = words.collect();
    let said = answer(store, verb.as_deref(), id, &paths);
    Some(said.map(|said| match said {
        Said::Done(text) if text.len() > MAX_ANSWER_BYTES => Said::Done(cut(&text)),
        other => other,
    }))
}

/// `text` cut to the chat's length, saying where the rest is.
fn cut(text: &str) -> String {
    let mut end = MAX_ANSWER_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… ({} more bytes: `pincer changes` in a terminal shows all)",
        &text[..end],
        text.len() - end
    )
}

/// Words split at white space; a double-quoted one is kept whole.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

fn answer(
    store: &Store,
    verb: Option<&str>,
    id: Option<Result<i64, std::num::ParseIntError>>,
    paths: &[String],
) -> Result<Said, ChangesError> {
    match (verb, id) {
        (None, None) => super::list(store, None, false).map(Said::Done),
        (Some("show"), Some(Ok(id))) if paths.is_empty() => super::show(store, id),
        (Some("accept"), Some(Ok(id))) => super::decide(store, id, paths, Decision::Accepted),
        (Some("reject"), Some(Ok(id))) => super::decide(store, id, paths, Decision::Rejected),
        (Some("approve"), Some(Ok(id))) if paths.is_empty() => {
            super::answer_access(store, id, true)
        }
        (Some("refuse"), Some(Ok(id))) if paths.is_empty() => {
            super::answer_access(store, id, false)
        }
        _ => Ok(Said::Usage(format!("usage: {USAGE}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_stay_whole_and_long_answers_are_cut() {
        let text = "/changes accept 4 \"my notes.md\" old/ \"\"";
        assert_eq!(
            words(text),
            ["/changes", "accept", "4", "my notes.md", "old/", ""]
        );
        let cut = cut(&"é".repeat(MAX_ANSWER_BYTES));
        assert!(
            cut.len() < MAX_ANSWER_BYTES + 100 && cut.contains("more bytes"),
            "{cut}"
        );
    }
}
