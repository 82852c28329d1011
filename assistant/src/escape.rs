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

/// The bidirectional controls: not control characters, but they reorder
/// what follows on the line (`bash: ls ` then U+202E then `txt.exe` can show as something
/// else entirely), so they are shown, not obeyed, too.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep_layout: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_layout && (c == '\n' || c == '\t');
    let shown = |c: char| (c.is_control() && !kept(c)) || is_bidi_control(c);
    if !text.chars().any(shown) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if shown(c) {
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
        assert_eq!(line("ls \u{202e}txt.exe"), "ls \\u{202e}txt.exe");
        assert_eq!(text("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
    }
}
