//! The `pincer` binary with only the email skill linked: the host this
//! skill's integration tests run (`CARGO_BIN_EXE_pincer-skill-email-host`),
//! so that they exercise the real `pincer serve` with the channel in it.

fn main() -> std::process::ExitCode {
    pincer_cli::main(pincer_skill_email::register)
}
