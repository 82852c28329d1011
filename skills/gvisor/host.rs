//! The `pincer` binary with only the `gvisor` skill linked: the host this
//! skill's tests run (`CARGO_BIN_EXE_pincer-skill-gvisor-host`).

fn main() -> std::process::ExitCode {
    pincer_cli::main(pincer_skill_gvisor::register)
}
