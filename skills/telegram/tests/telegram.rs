//! The Telegram channel against a local server that speaks the Bot API's JSON
//! (the recorded shapes of getUpdates, sendMessage and sendChatAction): the
//! real service cannot be reached from here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A fake Bot API: hands out `updates` twice, then long-polls empty; answers
/// the first `sendMessage` with "429 Too Many Requests" (as the real API
/// does when a bot sends too fast); records every call as (method, body).
struct FakeTelegram {
    url: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeTelegram {
    fn start(token: &str, updates: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        // Twice: the second as Telegram hands over updates whose offset was
        // not confirmed (the host stopped before its next poll).
        let pending = Arc::new(Mutex::new(vec![updates.clone(), updates]));
        let throttled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let prefix = format!("/bot{token}/");
        let seen = Arc::clone(&calls);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, pending, prefix, throttled) = (
                    Arc::clone(&seen),
                    Arc::clone(&pending),
                    prefix.clone(),
                    Arc::clone(&throttled),
                );
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut length = 0;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).unwrap();
                            if header.trim().is_empty() {
                                break;
                            }
                            if let Some(v) =
                                header.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let Some(method) = path.strip_prefix(&prefix) else {
                            let _ = writer
                                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                            continue;
                        };
                        seen.lock().unwrap().push((method.to_owned(), body.clone()));
                        if method == "sendMessage"
                            && !throttled.swap(true, std::sync::atomic::Ordering::SeqCst)
                        {
                            let reply = json!({"ok": false, "error_code": 429,
                                "description": "Too Many Requests: retry after 1",
                                "parameters": {"retry_after": 1}})
                            .to_string();
                            let response = format!(
                                "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                                reply.len()
                            );
                            if writer.write_all(response.as_bytes()).is_err() {
                                return;
                            }
                            continue;
                        }
                        let result = match method {
                            "getUpdates" => match pending.lock().unwrap().pop() {
                                Some(updates) => updates,
                                None => {
                                    std::thread::sleep(Duration::from_millis(200));
                                    json!([])
                                }
                            },
                            "sendMessage" => json!({
                                "message_id": 99,
                                "from": {"id": 123456, "is_bot": true, "first_name": "Pincer", "username": "pincer_bot"},
                                "chat": {"id": body["chat_id"], "type": "private"},
                                "date": 1764000000,
                                "text": body["text"]
                            }),
                            _ => json!(true),
                        };
                        let reply = json!({"ok": true, "result": result}).to_string();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                        if writer.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, calls }
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

#[test]
fn group_chats_and_the_owners_private_chat_are_answered_on_telegram() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-telegram-host"));
    let install = Installation::new();
    let added = install
        .pincer("http://127.0.0.1:1")
        .args(["groups", "add", "family", "--chat", "telegram:-1001"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let model = ScriptedModel::always(answer(|request| {
        let prompt = request.json()["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["content"]
            .clone();
        format!("re: {}", prompt.as_str().unwrap_or_default())
    }));
    let token = "123456:TEST-TOKEN";
    let telegram = FakeTelegram::start(
        token,
        json!([
            {"update_id": 10, "message": {"message_id": 1, "date": 0, "text": "@pincer what's for dinner?",
              "chat": {"id": -1001, "type": "group", "title": "Family"},
              "from": {"id": 7, "is_bot": false, "first_name": "Alice", "username": "alice"}}},
            {"update_id": 11, "message": {"message_id": 2, "date": 0, "text": "hello from my phone",
              "chat": {"id": 42, "type": "private", "first_name": "Owner"},
              "from": {"id": 42, "is_bot": false, "first_name": "Owner"}}},
            {"update_id": 12, "message": {"message_id": 3, "date": 0, "text": "@pincer let me in",
              "chat": {"id": -999, "type": "group", "title": "Strangers"},
              "from": {"id": 8, "is_bot": false, "first_name": "Mallory"}}}
        ]),
    );
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[
            ("TELEGRAM_BOT_TOKEN", token),
            ("TELEGRAM_API_URL", telegram.url.as_str()),
            ("TELEGRAM_OWNER_ID", "42"),
        ],
    );
    // Two answers, one of them sent again after the rate limit.
    assert!(
        wait_for(Duration::from_secs(120), || telegram
            .calls("sendMessage")
            .len()
            >= 3),
        "{:?}",
        telegram.calls.lock().unwrap()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.terminate(), Some(0));

    let sent = telegram.calls("sendMessage");
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        sent[0], sent[1],
        "the throttled message is sent again, once"
    );
    assert!(
        sent.contains(&json!({"chat_id": -1001, "text": "re: @pincer what's for dinner?"})),
        "{sent:?}"
    );
    assert!(
        sent.contains(&json!({"chat_id": 42, "text": "re: hello from my phone"})),
        "{sent:?}"
    );
    assert!(
        telegram
            .calls("sendChatAction")
            .contains(&json!({"chat_id": -1001, "action": "typing"}))
    );
    // Confirmed past the last update, the stranger's included (dropped, not answered).
    let polls = telegram.calls("getUpdates");
    assert!(polls.iter().any(|p| p["offset"] == 13), "{polls:?}");
    assert!(!sent.iter().any(|m| m["chat_id"] == -999));
}
