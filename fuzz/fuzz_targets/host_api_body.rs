//! Fuzzes the host API's request bodies: `hostapi::handle` over a real store
//! (groups `main`, `family`, `work`, a task each), the first byte choosing
//! the action (the nine real ones and an unknown one), the rest the body,
//! called by a non-main group and then by main. Asserts: the status is one
//! `hostapi::handle` uses for a caller's mistake or success (200, 400, 403,
//! 404, 409; never 500 from a healthy store), `ok` says whether it is 200
//! and a refusal says why; an unknown action is 404; a non-main group never
//! gets 200 for `register_group` or `list_groups`, and what it is granted
//! is its own: its chat for `send_message` and `schedule_task`, its group's
//! tasks for `list_tasks` and for pausing, resuming, cancelling or updating;
//! a schedule `schedule_task` or `update_task` accepts is one the scheduler
//! can plan (`scheduler::first_run`), as `hostapi::validate_schedule` promises.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::host_api_body::fuzz(data));
