//! `cargo xtask`: the project's automation, in Rust.
//!
//! - `cargo xtask migrate [--data-dir DIR] [--status]`: create or upgrade the database
//!   (the same code path as `botmaker migrate`).
//! - `cargo xtask ci`: exactly what CI runs.
//! - `cargo xtask bench [--n N] [--m M] [--threads T] [--raw]`: the standard workload
//!   (`../shared/bench/WORKLOAD.md`) in a release build.
//! - `cargo xtask stress [--secs S] [--seed X]`: the reliability campaign (RELIABILITY.md).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

mod bench;
mod ci;
mod stress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "botmaker-foundation automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database (`<data dir>/botmaker.db`) or apply pending migrations.
    Migrate {
        /// Data directory [default: $BOTMAKER_DATA_DIR, else ./data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// List applied and pending migrations instead of migrating.
        #[arg(long)]
        status: bool,
    },
    /// Run what CI runs: fmt check, clippy -D warnings, docs, tests, cargo-deny.
    Ci,
    /// Run the standard benchmark workload through the public API (release build).
    Bench {
        /// Rows of the database part.
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Bots of the secrets part.
        #[arg(long, default_value_t = 1_000)]
        m: usize,
        /// Threads of the parallel part.
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Also run it through bare rusqlite and bare syscalls, and print api/raw ratios.
        #[arg(long)]
        raw: bool,
    },
    /// Run the reliability campaign: crashes, contention, hostile input (RELIABILITY.md).
    Stress {
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Seed of the random choices (printed, so a failing run can be replayed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// A child process of the stress campaign (internal).
    #[command(hide = true)]
    StressChild {
        /// What the child does, as the campaign passes it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Migrate { data_dir, status } => migrate(data_dir, status),
        Command::Ci => ci::run(),
        Command::Stress { secs, seed } => stress::run(secs, seed),
        Command::StressChild { args } => stress::child(&args),
        Command::Bench { n, m, threads, raw } => {
            bench_command(bench::Params { n, m, threads, raw })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(data_dir: Option<PathBuf>, status: bool) -> anyhow::Result<()> {
    let mut config = botmaker::Config::from_env();
    if let Some(dir) = data_dir {
        config = config.with_data_dir(dir);
    }
    if status {
        print!("{}", botmaker::migration_status(&config)?);
    } else {
        print!("{}", botmaker::migrate(&config)?);
    }
    Ok(())
}

/// Benchmarks only mean something in a release build: a debug build re-runs itself
/// with `cargo run --release`.
fn bench_command(params: bench::Params) -> anyhow::Result<()> {
    let root = ci::workspace_root()?;
    if cfg!(debug_assertions) {
        eprintln!("bench: building and running in release mode");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(&root)
            .args([
                "run",
                "--release",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "bench",
            ])
            .args(["--n", &params.n.to_string(), "--m", &params.m.to_string()])
            .args(["--threads", &params.threads.to_string()])
            .args(params.raw.then_some("--raw"))
            .status()?;
        anyhow::ensure!(status.success(), "the release benchmark failed: {status}");
        return Ok(());
    }
    bench::run(params, &root.join("target"))
}
