//! The body of the `runner_line` target (see `fuzz_targets/runner_line.rs`).

use pincer_core::sandbox::MAX_LINE_BYTES;
use pincer_protocol::Event;
use serde_json::Value;

/// A line of the runner's stdout, as the sandbox hands it on.
#[derive(Debug, PartialEq)]
enum Line {
    Line(Vec<u8>),
    Oversized(usize),
}

/// The private `LineSplitter` of `core/src/sandbox/mod.rs`, line for line
/// (lines of at most `limit` bytes; a longer one is reported by its size):
/// keep the two in step.
struct Splitter {
    limit: usize,
    current: Vec<u8>,
    oversized: usize,
    lines: Vec<Line>,
}

impl Splitter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            current: Vec::new(),
            oversized: 0,
            lines: Vec::new(),
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.extend(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.extend(bytes);
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.oversized > 0 || self.current.len() + bytes.len() > self.limit {
            self.oversized += self.current.len() + bytes.len();
            self.current.clear();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    fn emit(&mut self) {
        if self.oversized > 0 {
            self.lines.push(Line::Oversized(self.oversized));
        } else {
            self.lines
                .push(Line::Line(std::mem::take(&mut self.current)));
        }
        self.current.clear();
        self.oversized = 0;
    }

    fn finish(mut self) -> Vec<Line> {
        if !self.current.is_empty() || self.oversized > 0 {
            self.emit();
        }
        self.lines
    }
}

/// The first byte is the size of the frames the engine delivers the rest
/// in; the rest is the runner's stdout.
pub fn fuzz(data: &[u8]) {
    let Some((&frame, output)) = data.split_first() else {
        return;
    };
    let frame = usize::from(frame).max(1);
    let split = |limit: usize| {
        let mut splitter = Splitter::new(limit);
        for chunk in output.chunks(frame) {
            splitter.push(chunk);
        }
        splitter.finish()
    };
    let lines = split(MAX_LINE_BYTES);
    // However the output was framed, the lines are the output's lines.
    let whole: Vec<&[u8]> = output.split(|&b| b == b'\n').collect();
    let expected = match whole.split_last() {
        Some(([], rest)) => rest,
        _ => &whole[..],
    };
    if output.len() <= MAX_LINE_BYTES {
        assert_eq!(lines.len(), expected.len());
        for (line, expected) in lines.iter().zip(expected) {
            assert_eq!(line, &Line::Line(expected.to_vec()));
        }
    }
    for line in &lines {
        match line {
            Line::Line(bytes) => event(bytes),
            Line::Oversized(bytes) => assert!(*bytes > MAX_LINE_BYTES),
        }
    }
    // A small limit, for the oversized path: a line is kept whole or
    // reported by its exact size.
    let limit = frame.min(64);
    let small = split(limit);
    assert_eq!(small.len(), expected.len());
    for (line, expected) in small.iter().zip(expected) {
        match line {
            Line::Line(bytes) => assert_eq!(bytes, expected),
            Line::Oversized(bytes) => {
                assert!(expected.len() > limit);
                assert_eq!(*bytes, expected.len());
            }
        }
    }
}

/// One line, as `invoke` reads it: an event, or a line it logs the start of.
/// An event prints as one line and reads back as itself.
fn event(line: &[u8]) {
    match serde_json::from_slice::<Event>(line) {
        Ok(event) => {
            let printed = serde_json::to_string(&event).unwrap();
            assert!(!printed.contains('\n'), "{printed}");
            let again: Event = serde_json::from_str(&printed).unwrap();
            assert_eq!(
                std::mem::discriminant(&again),
                std::mem::discriminant(&event)
            );
            // Floats may move by a rounding step through JSON (serde_json's
            // default parser); everything else reads back exactly.
            if !matches!(&event, Event::ToolCall { input, .. } if has_float(input)) {
                assert_eq!(again, event, "{printed}");
            }
        }
        Err(_) => {
            let _ = String::from_utf8_lossy(&line[..line.len().min(200)]);
        }
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(fields) => fields.values().any(has_float),
        _ => false,
    }
}
