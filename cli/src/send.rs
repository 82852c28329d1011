//! `pincer send`: one message to a running daemon; prints the reply.

use std::process::ExitCode;

use pincer_assistant::config::Paths;
use pincer_assistant::daemon::ControlClient;
use pincer_assistant::escape;

use crate::report;

pub(crate) async fn send_command(paths: &Paths, group: &str, text: &str) -> ExitCode {
    let mut client = match ControlClient::connect(&paths.home).await {
        Ok(client) => client,
        Err(err) => {
            report(&anyhow::anyhow!(
                "no pincer daemon answers at {} ({err}); start one with `pincer serve`",
                pincer_assistant::daemon::control_socket(&paths.home).display()
            ));
            return ExitCode::from(1);
        }
    };
    match client.ask(group, text).await {
        Ok((reply, failed)) => {
            println!("{}", escape::text(&reply));
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            report(&anyhow::anyhow!("{err}"));
            ExitCode::from(1)
        }
    }
}
