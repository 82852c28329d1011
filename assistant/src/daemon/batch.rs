//! A group's waiting messages as one prompt.

use pincer_store::Inbound;

/// One prompt for a batch: the text itself when alone, else each message
/// with its sender, in order. Longer than `limit`, the oldest messages are
/// left out (a note says how many) and a single message still too long is
/// cut: a batch never makes an invocation the runner would refuse, and the
/// group never waits on a batch that cannot run.
pub(super) fn render(batch: &[Inbound], limit: usize) -> String {
    let rendered: Vec<String> = match batch {
        [single] => vec![single.text.clone()],
        many => many
            .iter()
            .map(|message| format!("[{}] {}\n", message.sender, message.text))
            .collect(),
    };
    const HEADER: &str = "Messages since your last reply, oldest first:\n";
    let room = limit.saturating_sub(HEADER.len() + 120);
    let mut kept = 0;
    let mut used = 0;
    for text in rendered.iter().rev() {
        if used + text.len() > room {
            break;
        }
        used += text.len();
        kept += 1;
    }
    // With none kept, the newest is still given, cut.
    let left_out = rendered.len() - kept.max(1);
    if let ([single], 1) = (rendered.as_slice(), kept) {
        return single.clone();
    }
    let mut prompt = String::from(HEADER);
    if left_out > 0 {
        prompt.push_str(&format!(
            "({left_out} older message(s) left out: together they were longer than an invocation takes)\n"
        ));
    }
    if kept == 0 {
        // Even the newest alone is too long: its end is what is most recent.
        let newest = &rendered[rendered.len() - 1];
        let mut start = newest.len().saturating_sub(room);
        while !newest.is_char_boundary(start) {
            start += 1;
        }
        prompt.push_str(&format!(
            "(the newest message is cut to its last {room} bytes)\n"
        ));
        prompt.push_str(&newest[start..]);
        return prompt;
    }
    for text in &rendered[rendered.len() - kept..] {
        prompt.push_str(text);
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, text: &str) -> Inbound {
        Inbound {
            id,
            chat_id: "local:x".into(),
            sender: "ana".into(),
            text: text.into(),
        }
    }

    #[test]
    fn one_message_is_its_text_and_many_are_listed_in_order() {
        assert_eq!(render(&[message(1, "hi")], 1000), "hi");
        let prompt = render(&[message(1, "one"), message(2, "two")], 1000);
        assert!(prompt.ends_with("[ana] one\n[ana] two\n"), "{prompt}");
    }

    #[test]
    fn a_batch_too_long_loses_its_oldest_messages_and_says_so() {
        let batch: Vec<Inbound> = (0..300).map(|i| message(i, &"x".repeat(1000))).collect();
        let prompt = render(&batch, 16 * 1024);
        assert!(prompt.len() <= 16 * 1024, "{}", prompt.len());
        assert!(prompt.contains("older message(s) left out"), "{prompt}");
        let kept = prompt.matches("[ana]").count();
        let said: usize = prompt
            .split("(")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(kept + said, 300);
    }

    #[test]
    fn a_single_message_too_long_is_cut_to_its_end() {
        let text = format!("{}THE END", "é".repeat(10_000));
        let prompt = render(&[message(1, &text)], 4096);
        assert!(prompt.len() <= 4096, "{}", prompt.len());
        assert!(prompt.ends_with("THE END"), "{prompt}");
        assert!(prompt.contains("cut to its last"), "{prompt}");
        assert!(!prompt.contains("left out"), "{prompt}");
    }
}
