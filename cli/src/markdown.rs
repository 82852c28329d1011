//! An answer rendered for a terminal: headings, emphasis, code, lists,
//! quotes and links as ANSI styles. Used only when stdout is a terminal and
//! `NO_COLOR` is not set; elsewhere the answer stays the Markdown the agent
//! wrote, which is what a pipe or a log wants.
//!
//! The agent wrote the text: every piece of it is escaped before it is put
//! between styles, so the only escape sequences on the screen are ours.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use pincer_assistant::escape;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const ITALIC: &str = "\x1b[3m";
const UNDERLINE: &str = "\x1b[4m";
const STRIKE: &str = "\x1b[9m";
const CODE: &str = "\x1b[36m";

/// Whether answers are styled: stdout is a terminal and `NO_COLOR` is unset or empty.
pub(crate) fn styled() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Past this size an answer is shown as written: styling is for reading,
/// and a huge one would cost more than it gives.
const STYLED_BYTES: usize = 256 * 1024;
/// The deepest nesting of quotes and of lists drawn; deeper ones are drawn
/// at this depth (each level repeats on every line: an agent nesting a
/// thousand deep must not make the screen a thousand times its answer).
const DRAWN_DEPTH: usize = 6;

/// `text` for the owner's screen: styled when `styled`, else as written (escaped).
pub(crate) fn render(text: &str, styled: bool) -> String {
    if !styled || text.len() > STYLED_BYTES {
        return escape::text(text).into_owned();
    }
    let mut out = Renderer::default();
    for event in Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH) {
        out.event(event);
    }
    out.text.trim_end().to_owned() + RESET
}

#[derive(Default)]
struct Renderer {
    text: String,
    /// The styles open now, innermost last.
    styles: Vec<&'static str>,
    /// Open lists: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    quotes: usize,
    in_code_block: bool,
    /// Open links: the address, and the text so far (the address is shown
    /// after the text when it differs from it).
    links: Vec<(String, String)>,
    /// A block ended: the next one starts after a blank line.
    block_ended: bool,
    /// An item's marker was just written.
    item_opened: bool,
}

impl Renderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) if self.in_code_block => {
                for line in text.split_inclusive('\n') {
                    self.line_start();
                    self.text.push_str(CODE);
                    self.text.push_str("    ");
                    self.text
                        .push_str(&escape::text(line.trim_end_matches('\n')));
                    self.text.push_str(RESET);
                    self.text.push('\n');
                }
            }
            Event::Text(text) => {
                self.item_opened = false;
                if let Some((_, shown)) = self.links.last_mut() {
                    shown.push_str(&text);
                }
                self.text.push_str(&escape::text(&text).replace('\n', " "));
            }
            Event::Code(code) => {
                self.text.push_str(CODE);
                self.text.push_str(&escape::line(&code));
                self.restyle();
            }
            Event::SoftBreak | Event::HardBreak => {
                self.text.push('\n');
                self.indent();
            }
            Event::Rule => {
                self.block_start();
                self.text.push_str(DIM);
                self.text.push_str(&"─".repeat(40));
                self.text.push_str(RESET);
                self.block_ended = true;
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                self.text.push_str(&escape::text(&html));
            }
            Event::TaskListMarker(done) => self.text.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(name) => {
                self.text.push_str(&format!("[{}]", escape::line(&name)));
            }
            Event::InlineMath(math) | Event::DisplayMath(math) => {
                self.text.push_str(&escape::line(&math));
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.block_start(),
            Tag::Heading { level, .. } => {
                self.block_start();
                let style = if level == HeadingLevel::H1 {
                    UNDERLINE
                } else {
                    BOLD
                };
                self.push_style(BOLD);
                self.push_style(style);
            }
            Tag::BlockQuote(_) => self.quotes += 1,
            Tag::CodeBlock(kind) => {
                self.block_start();
                if let CodeBlockKind::Fenced(language) = kind
                    && !language.is_empty()
                {
                    self.text.push_str(DIM);
                    self.text
                        .push_str(&format!("    {}", escape::line(&language)));
                    self.text.push_str(RESET);
                    self.text.push('\n');
                }
                self.in_code_block = true;
            }
            Tag::List(first) => {
                if self.lists.is_empty() {
                    // The indentation is each item's to write.
                    self.separate();
                } else {
                    self.item_opened = false;
                }
                self.lists.push(first);
            }
            Tag::Item => {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.text.push('\n');
                }
                self.indent_quotes();
                self.indent_lists(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let marker = format!("{n}. ");
                        *n += 1;
                        marker
                    }
                    _ => "• ".to_owned(),
                };
                self.text.push_str(&marker);
                self.item_opened = true;
            }
            Tag::Emphasis => self.push_style(ITALIC),
            Tag::Strong => self.push_style(BOLD),
            Tag::Strikethrough => self.push_style(STRIKE),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.links.push((dest_url.into_string(), String::new()));
                self.push_style(UNDERLINE);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.block_ended = true,
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.styles.pop();
                self.restyle();
                self.block_ended = true;
            }
            TagEnd::BlockQuote(_) => {
                self.quotes = self.quotes.saturating_sub(1);
                self.block_ended = true;
            }
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                self.block_ended = true;
            }
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.block_ended = true;
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
                self.restyle();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                self.restyle();
                if let Some((url, shown)) = self.links.pop()
                    && shown != url
                    && Some(shown.as_str()) != url.strip_prefix("mailto:")
                {
                    self.text.push_str(&format!(" ({})", escape::line(&url)));
                }
            }
            _ => {}
        }
    }

    fn push_style(&mut self, style: &'static str) {
        self.styles.push(style);
        self.text.push_str(style);
    }

    /// Ends every style and opens again the ones still in force (each once,
    /// however deep the emphasis is nested).
    fn restyle(&mut self) {
        self.text.push_str(RESET);
        for style in [BOLD, ITALIC, UNDERLINE, STRIKE] {
            if self.styles.contains(&style) {
                self.text.push_str(style);
            }
        }
    }

    /// Where a paragraph, heading, list or block starts: a blank line after the last block.
    fn block_start(&mut self) {
        if self.separate() {
            self.indent();
        }
    }

    /// Ends the line, or leaves a blank one after a block; false where
    /// the block goes on the line of an item's marker.
    fn separate(&mut self) -> bool {
        let after_block = std::mem::take(&mut self.block_ended);
        // An item's first paragraph goes on its marker's line.
        if std::mem::take(&mut self.item_opened) {
            return false;
        }
        if !self.text.is_empty() {
            let kept = self.text.trim_end_matches('\n').len();
            self.text.truncate(kept);
            self.text.push_str(if after_block && self.lists.is_empty() {
                "\n\n"
            } else {
                "\n"
            });
        }
        true
    }

    fn line_start(&mut self) {
        if self.text.ends_with('\n') || self.text.is_empty() {
            self.indent();
        }
    }

    fn indent(&mut self) {
        self.indent_quotes();
        self.indent_lists(0);
    }

    fn indent_quotes(&mut self) {
        if self.quotes > 0 {
            self.text.push_str(DIM);
            self.text
                .push_str(&"│ ".repeat(self.quotes.min(DRAWN_DEPTH)));
            self.restyle();
        }
    }

    fn indent_lists(&mut self, but: usize) {
        let depth = self.lists.len().min(DRAWN_DEPTH).saturating_sub(but);
        self.text.push_str(&"  ".repeat(depth));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(styled: &str) -> String {
        let mut out = String::new();
        let mut chars = styled.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn markdown_is_styled_for_a_terminal() {
        let text = "# Plan\n\nSome **bold** and *soft* words, `code` too.\n\n\
                    - one\n- two\n\n1. first\n2. second\n\n```rust\nfn main() {}\n```\n\n\
                    > quoted\n\nSee [the docs](https://example.org).";
        let out = render(text, true);
        assert!(out.contains(&format!("{BOLD}bold{RESET}")), "{out:?}");
        assert!(out.contains(&format!("{ITALIC}soft{RESET}")), "{out:?}");
        assert!(out.contains(&format!("{CODE}code{RESET}")), "{out:?}");
        assert_eq!(
            plain(&out),
            "Plan\n\nSome bold and soft words, code too.\n\n• one\n• two\n\n1. first\n2. second\n\n    rust\n    fn main() {}\n\n│ quoted\n\nSee the docs (https://example.org)."
        );
    }

    #[test]
    fn nested_lists_indent_and_styles_survive_inner_ones() {
        let out = render("- a\n  - b **x *y* z**\n- c\n\n> - quoted item", true);
        assert_eq!(plain(&out), "• a\n  • b x y z\n• c\n\n│ • quoted item");
        assert!(
            out.contains(&format!("{RESET}{BOLD} z")),
            "bold again after the emphasis inside it: {out:?}"
        );
    }

    #[test]
    fn what_the_agent_wrote_cannot_style_the_terminal() {
        let out = render("**a\x1b[2Jb** `c\x1b]52;c;eA==\x07`", true);
        assert!(!out.contains("\x1b[2J"), "{out:?}");
        assert!(!out.contains("\x1b]52"), "{out:?}");
        assert!(out.contains("\\x1b[2J"), "{out:?}");
    }

    #[test]
    fn deep_nesting_is_drawn_at_a_bounded_depth() {
        // What is drawn grows with the answer, not with its depth times its
        // lines (before the cap: 2,000 quotes deep times 2,000 lines, 48 MB).
        let quotes = ">".repeat(2000) + " a" + &"\nb".repeat(2000);
        let emphasis = "*".repeat(3000) + "x" + &"*".repeat(3000);
        let lists = "- ".repeat(1000) + "x" + &"\nx".repeat(2000);
        for text in [quotes, emphasis, lists] {
            let out = render(&text, true);
            assert!(
                out.len() < 40 * text.len(),
                "{} bytes from {}",
                out.len(),
                text.len()
            );
        }
        let huge = "**x** ".repeat(STYLED_BYTES);
        assert_eq!(render(&huge, true), huge, "past the limit, as written");
    }

    #[test]
    fn autolinks_are_not_repeated_and_tabs_stay_tabs() {
        let out = plain(&render(
            "<https://example.org> and [x](https://x.org)",
            true,
        ));
        assert_eq!(out, "https://example.org and x (https://x.org)");
        let out = plain(&render("```\n\tindented\n```", true));
        assert_eq!(out, "    \tindented");
    }

    #[test]
    fn unstyled_is_the_markdown_as_written_escaped() {
        assert_eq!(render("**bold**\n- item", false), "**bold**\n- item");
        assert_eq!(render("a\x1bb", false), "a\\x1bb");
    }
}
