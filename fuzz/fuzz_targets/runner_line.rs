//! Fuzzes the runner's stdout as the host reads it: the data (after a first
//! byte giving the size of the frames it arrives in) is split on `\n` as
//! `sandbox`'s private `LineSplitter` splits it (a copy in `src/runner_line.rs`)
//! and each line parsed with `serde_json::from_slice::<pincer_protocol::Event>`,
//! as `invoke` does. Asserts: the lines are the output's lines however it
//! is framed (a line over the limit is reported with its exact size); an
//! event prints as one line and reads back as the same event (up to a
//! float's rounding in a tool's input).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::runner_line::fuzz(data));
