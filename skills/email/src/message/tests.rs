//! What arrives parsed, what goes out composed: headers, threads, encodings, and who is the owner.

use super::*;

const ALICE: &[u8] = b"Received: by mx.example.test\r\n\
Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n\
From: Alice <Alice@Example.test>\r\n\
To: bot@example.test\r\n\
Subject: =?utf-8?B?RMOubmVy?= plans\r\n\
Message-ID: <a2@example.test>\r\n\
In-Reply-To: <a1@example.test>\r\n\
References: <a0@example.test> <a1@example.test>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
what's for dinner?\r\n";

#[test]
fn mail_parses_into_what_the_inbox_gets() {
    let mail = parse(ALICE).unwrap();
    assert_eq!(mail.from.as_deref(), Some("alice@example.test"));
    assert_eq!(mail.text, "Subject: Dîner plans\n\nwhat's for dinner?");
    assert_eq!(mail.thread.message_id.as_deref(), Some("a2@example.test"));
    assert_eq!(
        mail.thread.references,
        ["a0@example.test", "a1@example.test"]
    );
    assert_eq!(
        mail.auth_results.as_deref().map(str::trim),
        Some("mx.example.test; dkim=pass header.d=example.test")
    );
    let state = mail.thread.to_state();
    assert_eq!(Thread::from_state(&state), mail.thread);
    assert!(!mail.automatic);
}

#[test]
fn what_machines_send_is_known_as_such() {
    let with = |header: &str| {
        let raw =
            format!("From: alice@example.test\r\n{header}\r\nSubject: Away\r\n\r\nI am away.\r\n");
        parse(raw.as_bytes()).unwrap().automatic
    };
    assert!(with("Auto-Submitted: auto-replied"));
    assert!(with("auto-submitted: Auto-Generated"));
    assert!(with("Precedence: bulk"));
    assert!(with("X-Autoreply: yes"));
    assert!(!with("Auto-Submitted: no"));
    assert!(!with("Precedence: first-class"));
    let bounce =
        parse(b"From: MAILER-DAEMON@example.test\r\nSubject: Undelivered\r\n\r\nx\r\n").unwrap();
    assert!(bounce.automatic);
}

#[test]
fn html_only_mail_is_text_and_long_mail_is_cut() {
    let html = b"From: a@b.test\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>you</b></p>\r\n";
    let mail = parse(html).unwrap();
    assert!(
        mail.text.contains("Hello") && !mail.text.contains("<b>"),
        "{}",
        mail.text
    );
    let mut long = b"From: a@b.test\r\nSubject: long\r\n\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 200_000));
    assert_eq!(parse(&long).unwrap().text.len(), MAX_TEXT);
}

#[test]
fn only_the_named_servers_passing_result_for_the_owners_domain_authenticates() {
    let id = "mx.example.test";
    assert!(authenticates(
        " mx.example.test; dkim=pass header.d=example.test",
        id,
        "example.test"
    ));
    assert!(authenticates(
        "mx.example.test 1; spf=fail smtp.mailfrom=x;\r\n dmarc=pass (p=reject) header.from=Example.Test",
        id,
        "example.test"
    ));
    // Another server's header, a failure, another domain, a comment.
    assert!(!authenticates(
        "evil.test; dkim=pass header.d=example.test",
        id,
        "example.test"
    ));
    assert!(!authenticates(
        "mx.example.test; dkim=fail header.d=example.test",
        id,
        "example.test"
    ));
    assert!(!authenticates(
        "mx.example.test; dkim=pass header.d=evil.test",
        id,
        "example.test"
    ));
    assert!(!authenticates(
        "mx.example.test; dkim=fail (dkim=pass header.d=example.test) header.d=evil.test",
        id,
        "example.test"
    ));
    assert!(!authenticates(
        "mx.example.test; spf=pass smtp.mailfrom=example.test",
        id,
        "example.test"
    ));
}

#[test]
fn a_reply_threads_and_keeps_agent_text_out_of_the_headers() {
    let thread = Thread {
        address: "alice@example.test".into(),
        message_id: Some("a2@example.test".into()),
        references: vec!["a0@example.test".into(), "a1@example.test".into()],
        subject: "Dîner\r\nBcc: everyone@example.test".into(),
    };
    let text = "Sure.\r\nBcc: victim@example.test\n.\n=a line with a trailing space ";
    let mail = compose(
        &Reply {
            from: "bot@example.test",
            to: "alice@example.test",
            thread: Some(&thread),
            message_id: "pincer-7-1@example.test",
            text,
        },
        UNIX_EPOCH,
    );
    let raw = String::from_utf8(mail.clone()).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(!head.contains("Bcc: "), "{head}");
    assert!(
        head.contains("In-Reply-To: <a2@example.test>\r\n"),
        "{head}"
    );
    assert!(
        head.contains("References: <a0@example.test>\r\n <a1@example.test>\r\n <a2@example.test>"),
        "{head}"
    );
    assert!(
        head.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"),
        "{head}"
    );
    assert!(raw.lines().all(|l| l.len() <= 998));
    assert!(!raw.replace("\r\n", "").contains('\n'), "CRLF only");
    assert!(
        body.contains("=3Da line with a trailing space=20"),
        "{body}"
    );
    // What a mail client reads back.
    let parsed = MessageParser::default().parse(&mail).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Re: Dîner  Bcc: everyone@example.test")
    );
    assert_eq!(
        parsed.body_text(0).unwrap().trim_end_matches(['\r', '\n']),
        "Sure.\nBcc: victim@example.test\n.\n=a line with a trailing space ".replace('\n', "\r\n")
    );
    assert_eq!(parsed.in_reply_to().as_text(), Some("a2@example.test"));
}

#[test]
fn subjects_are_not_re_re_and_non_ascii_is_encoded() {
    let thread = Thread {
        subject: "RE: hello".into(),
        ..Thread::default()
    };
    let reply = Reply {
        from: "b@x.test",
        to: "a@x.test",
        thread: Some(&thread),
        message_id: "m@x.test",
        text: "hi",
    };
    let raw = String::from_utf8(compose(&reply, UNIX_EPOCH)).unwrap();
    assert!(raw.contains("Subject: RE: hello\r\n"), "{raw}");
    assert!(!raw.contains("In-Reply-To"), "no parent id, no In-Reply-To");
    let long = "é".repeat(100);
    let encoded = encode_word(&long);
    assert!(
        encoded.is_ascii() && encoded.lines().all(|l| l.trim().len() <= 76),
        "{encoded}"
    );
    assert_eq!(base64(b"\0bot\0secret"), "AGJvdABzZWNyZXQ=");
    assert_eq!(base64(b"ab"), "YWI=");
}

#[test]
fn dates_are_rfc5322() {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(1_764_579_671);
    assert_eq!(rfc5322_date(t), "Mon, 01 Dec 2025 09:01:11 +0000");
}
