//! `botmaker-stress-child PART ARGS...`: one process of the reliability campaign, which
//! the campaign (or a reliability test) starts and then SIGKILLs at a random moment.
//! Its stdout carries the line protocol of `botmaker_stress::common`.
#![allow(clippy::print_stderr)] // a command-line program

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match botmaker_stress::child(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
