//! `botmaker-stress [--secs S] [--seed X]`: the reliability campaign (RELIABILITY.md);
//! `cargo xtask stress` runs it.
#![allow(clippy::print_stderr)] // a command-line program

use std::process::ExitCode;

use clap::Parser;

/// Run the reliability campaign: crashes, contention, hostile input (RELIABILITY.md).
#[derive(Parser)]
#[command(name = "botmaker-stress")]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Seed of the random choices (printed, so a failing run can be replayed).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result =
        botmaker_stress::build_children().and_then(|()| botmaker_stress::run(args.secs, args.seed));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
