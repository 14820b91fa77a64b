//! `wclab`: parse the command line, run the command, map the outcome to an
//! exit status. Everything else lives in the library crates.

use clap::Parser;
use std::process::ExitCode;
use wclab::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    wclab::logging::init(cli.command.default_log_level());
    match wclab::commands::dispatch(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("error: {}", wclab::logging::one_sentence(&e));
            ExitCode::from(2)
        }
    }
}
