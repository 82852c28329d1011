//! The `pincer` binary with only the `openai-compatible` skill linked: the
//! host this skill's tests run (`CARGO_BIN_EXE_pincer-skill-openai-compatible-host`).

fn main() -> std::process::ExitCode {
    pincer_cli::main(pincer_skill_openai_compatible::register)
}
