//! Text an agent could have chosen, made safe for the owner's terminal.
//!
//! Much of what Pincer prints was written, directly or not, by an agent: a
//! reply, a task's prompt, a chat id, an audit row's action. A control
//! character in it is an instruction to the terminal (`ESC[2K\r` erases the
//! line just printed, so a fake row can stand in for a real one; OSC 52
//! writes the clipboard), so every command that prints stored text passes it
//! through here. `--json` output is not: JSON escapes control characters
//! itself, and scripts need the exact text.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character (C0, DEL, C1) written as an escape
/// such as `\x1b`: for a field printed on one line.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`line`], but newlines and tabs stay: for a message's text.
pub fn text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_layout: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_layout && (c == '\n' || c == '\t');
    if !text.chars().any(|c| c.is_control() && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && !kept(c) {
            let code = u32::from(c);
            let _ = match code {
                0..=0xff => write!(out, "\\x{code:02x}"),
                _ => write!(out, "\\u{{{code:x}}}"),
            };
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(line("plain"), "plain");
        assert!(matches!(line("plain"), Cow::Borrowed(_)));
        assert_eq!(line("a\x1b[2K\rb"), "a\\x1b[2K\\x0db");
        assert_eq!(line("\x1b]52;c;aGk=\x07"), "\\x1b]52;c;aGk=\\x07");
        assert_eq!(line("x\u{9b}31m"), "x\\x9b31m");
        assert_eq!(line("a\nb\tc\x7f"), "a\\x0ab\\x09c\\x7f");
        assert_eq!(text("a\nb\tc\x1b"), "a\nb\tc\\x1b");
        assert_eq!(text("é ü 中"), "é ü 中");
    }
}
