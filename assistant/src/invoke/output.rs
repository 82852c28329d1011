//! What the runner writes on stdout, read as the agent could have written
//! it: each line should be one [`Event`], and anything else (an empty line,
//! a malformed or oversized one) is junk. Junk costs the host a parse and,
//! if it were logged line by line, a log line each: so the first few are
//! logged, the rest counted, and past `[limits] junk_lines` the invocation
//! is ended.

use pincer_protocol::{Event, Outcome};

use pincer_core::sandbox::{LineFlow, OutputLine};

/// Junk lines logged one by one before they are only counted.
const LOGGED_JUNK: u32 = 3;
/// How much of a junk line a log line quotes.
const QUOTED_BYTES: usize = 200;

/// The events of one invocation's output, and what was not an event.
#[derive(Debug)]
pub struct RunnerOutput {
    invocation: String,
    junk_limit: u32,
    /// Lines that were not events.
    pub junk: u32,
    /// Tool calls the runner reported.
    pub tool_calls: u32,
    /// The runner's result, once it wrote one.
    pub outcome: Option<Outcome>,
}

impl RunnerOutput {
    /// Reading `invocation`'s output, ending it past `junk_limit` junk lines.
    pub fn new(invocation: &str, junk_limit: u32) -> Self {
        Self {
            invocation: invocation.to_owned(),
            junk_limit,
            junk: 0,
            tool_calls: 0,
            outcome: None,
        }
    }

    /// Takes one line; every event but the result goes to `on_event`.
    pub fn line(&mut self, line: OutputLine<'_>, on_event: &mut dyn FnMut(&Event)) -> LineFlow {
        let why = match line {
            OutputLine::Line(bytes) => match serde_json::from_slice::<Event>(bytes) {
                Ok(Event::Result(result)) => {
                    self.outcome = Some(result);
                    return LineFlow::Continue(());
                }
                Ok(event) => {
                    if matches!(event, Event::ToolCall { .. }) {
                        self.tool_calls += 1;
                    }
                    on_event(&event);
                    return LineFlow::Continue(());
                }
                Err(err) => format!(
                    "not an event ({err}): {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_BYTES)])
                ),
            },
            OutputLine::Oversized { bytes } => format!("an oversized line ({bytes} bytes)"),
        };
        self.junk += 1;
        if self.junk <= LOGGED_JUNK {
            tracing::warn!(invocation = %self.invocation, "ignoring what the runner wrote: {why}");
        } else if self.junk == LOGGED_JUNK + 1 {
            tracing::warn!(invocation = %self.invocation, "the runner keeps writing lines that are not events: counting them, not logging each");
        }
        if self.junk > self.junk_limit {
            return LineFlow::Break(format!(
                "the runner wrote more than {} lines that are not events ([limits] junk_lines)",
                self.junk_limit
            ));
        }
        LineFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pass_junk_is_counted_and_ends_the_run_past_the_limit() {
        let mut output = RunnerOutput::new("inv", 5);
        let mut seen = 0;
        let mut on_event = |_: &Event| seen += 1;
        let event = br#"{"type":"tool_call","id":"t1","name":"bash","input":{}}"#;
        assert!(
            output
                .line(OutputLine::Line(event), &mut on_event)
                .is_continue()
        );
        for _ in 0..5 {
            assert!(
                output
                    .line(OutputLine::Line(b""), &mut on_event)
                    .is_continue()
            );
        }
        let ended = output.line(OutputLine::Oversized { bytes: 9 }, &mut on_event);
        assert!(matches!(ended, LineFlow::Break(ref why) if why.contains("junk_lines")));
        assert_eq!(output.junk, 6);
        assert_eq!(output.tool_calls, 1);
        assert_eq!(seen, 1);
    }
}
