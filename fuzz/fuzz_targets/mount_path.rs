//! Fuzzes the path validator against a real tree with symlinks and secrets:
//! whatever is asked for, an allowed mount is a real path under an allowed
//! root, with no blocked name, landing under /workspace/extra.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::mount_path::fuzz(data));
