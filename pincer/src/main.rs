//! `pincer`: the commands of `pincer-cli`, with the skills this build links.

mod skills;

fn main() -> std::process::ExitCode {
    pincer_cli::main(skills::register)
}
