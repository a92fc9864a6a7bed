//! `sift`: the command-line face of the engine.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    sift::panics::install_hook("sift");
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
