//! Fuzzes the mount allowlist parser: any bytes give a policy or a clear
//! error, never a panic; a policy that parses still decides requests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::allowlist::fuzz(data));
