//! The container's output as it streams: stdout cut into bounded lines for
//! the caller's handler, the end of stderr kept for the error message.

use super::{LineFlow, LineHandler, MAX_LINE_BYTES, OutputLine, STDERR_TAIL_BYTES};

/// Splits a byte stream into lines, bounding each.
#[derive(Default)]
pub(super) struct LineSplitter {
    current: Vec<u8>,
    oversized: usize,
}

impl LineSplitter {
    pub(super) fn push(&mut self, mut bytes: &[u8], on_line: &mut LineHandler<'_>) -> LineFlow {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.extend(&bytes[..newline]);
            self.emit(on_line)?;
            bytes = &bytes[newline + 1..];
        }
        self.extend(bytes);
        LineFlow::Continue(())
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.oversized > 0 || self.current.len() + bytes.len() > MAX_LINE_BYTES {
            self.oversized += self.current.len() + bytes.len();
            self.current.clear();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    fn emit(&mut self, on_line: &mut LineHandler<'_>) -> LineFlow {
        let flow = if self.oversized > 0 {
            on_line(OutputLine::Oversized {
                bytes: self.oversized,
            })
        } else {
            on_line(OutputLine::Line(&self.current))
        };
        self.current.clear();
        self.oversized = 0;
        flow
    }

    pub(super) fn finish(mut self, on_line: &mut LineHandler<'_>) -> LineFlow {
        if !self.current.is_empty() || self.oversized > 0 {
            return self.emit(on_line);
        }
        LineFlow::Continue(())
    }
}

/// The last [`STDERR_TAIL_BYTES`] of a stream.
#[derive(Default)]
pub(super) struct Tail(Vec<u8>);

impl Tail {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > STDERR_TAIL_BYTES {
            let cut = self.0.len() - STDERR_TAIL_BYTES;
            self.0.drain(..cut);
        }
    }

    pub(super) fn into_string(self) -> String {
        String::from_utf8_lossy(&self.0).trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut on_line = |line: OutputLine<'_>| {
            out.push(match line {
                OutputLine::Line(l) => String::from_utf8_lossy(l).into_owned(),
                OutputLine::Oversized { bytes } => format!("<{bytes}>"),
            });
            LineFlow::Continue(())
        };
        let mut splitter = LineSplitter::default();
        for chunk in chunks {
            let _ = splitter.push(chunk, &mut on_line);
        }
        let _ = splitter.finish(&mut on_line);
        out
    }

    #[test]
    fn a_handler_that_ends_the_run_sees_no_further_line() {
        let mut seen = 0;
        let mut on_line = |_: OutputLine<'_>| {
            seen += 1;
            match seen {
                2 => LineFlow::Break("enough".into()),
                _ => LineFlow::Continue(()),
            }
        };
        let mut splitter = LineSplitter::default();
        let flow = splitter.push(b"a\nb\nc\nd\n", &mut on_line);
        assert_eq!(flow, LineFlow::Break("enough".into()));
        assert_eq!(seen, 2);
    }

    #[test]
    fn lines_survive_any_chunking() {
        assert_eq!(split(&[b"a\nb", b"c\n", b"\nd"]), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"x", b"y", b"z\n"]), ["xyz"]);
    }

    #[test]
    fn oversized_lines_are_reported_not_buffered() {
        let big = vec![b'x'; MAX_LINE_BYTES];
        let out = split(&[&big, b"yy\nok\n"]);
        assert_eq!(out, [format!("<{}>", MAX_LINE_BYTES + 2), "ok".into()]);
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; STDERR_TAIL_BYTES]);
        tail.push(b"the end");
        let text = tail.into_string();
        assert!(text.ends_with("the end"));
        assert_eq!(text.len(), STDERR_TAIL_BYTES);
    }
}
