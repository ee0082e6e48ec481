//! `cargo xtask`: the project's automation, in Rust.
//!
//! - `cargo xtask migrate [--data-dir DIR] [--database-url URL] [--status]`: create or
//!   upgrade the registry, by running `botmaker migrate` (one code path for migrating).
//! - `cargo xtask ci`: exactly what CI runs.
//! - `cargo xtask bench [--n N] [--m M] [--threads T] [--raw] [--only-async] [--database-url URL]`:
//!   the standard workload (`../shared/bench/WORKLOAD.md`), the `botmaker-bench` binary in
//!   a release build; with `--database-url`, its database and parallel parts on PostgreSQL.
//! - `cargo xtask stress [--secs S] [--seed X]`: the reliability campaign
//!   (RELIABILITY.md), the `botmaker-stress` binary.
//! - `cargo xtask mutants [--part P] [--in-diff REF] [--shard K/N] | --ci [--slice I]`:
//!   mutation testing of the modules that carry the invariants with cargo-mutants
//!   (TESTING.md); `--ci` runs one rotating slice of about 12 mutants, as CI does.
//!
//! Every command but `ci` and `mutants` hands its arguments to a binary of the workspace with
//! `cargo run`, so xtask depends on none of our crates: building it compiles no SQLite,
//! and `cargo xtask ci` can say what `cargo fmt --check` thinks before anything slow.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

mod ci;
mod mutants;

use std::ffi::OsString;
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
    /// Create the registry (`<data dir>/botmaker.db`, or the PostgreSQL database the
    /// URL names) or apply pending migrations.
    Migrate {
        /// Data directory [default: $BOTMAKER_DATA_DIR, else ./data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Registry database: postgres://…, postgresql://… or key=value pairs select
        /// PostgreSQL. Put a URL with a password in BOTMAKER_DATABASE_URL instead: a
        /// command line is visible to other users [default: $BOTMAKER_DATABASE_URL,
        /// else SQLite in the data dir].
        #[arg(long, value_name = "URL")]
        database_url: Option<OsString>,
        /// List applied and pending migrations instead of migrating.
        #[arg(long)]
        status: bool,
    },
    /// Run what CI runs: fmt check, clippy -D warnings, docs, tests, cargo-deny, one
    /// slice of mutation testing.
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
        /// Run only the async part (`botmaker::aio`, 1 and 64 tasks, and the hand-off).
        #[arg(long)]
        only_async: bool,
        /// Run the database and parallel parts on this PostgreSQL server, in a scratch
        /// database made and dropped by the run (its user may CREATE DATABASE).
        #[arg(long, value_name = "URL")]
        database_url: Option<OsString>,
    },
    /// Mutation testing (cargo-mutants) of the modules that carry the invariants
    /// (TESTING.md, .cargo/mutants.toml).
    Mutants {
        /// Which files: all, domain, secrets, sqlite or facade.
        #[arg(long, default_value = "all")]
        part: String,
        /// Only the mutants in lines changed since this git revision (a merge base).
        #[arg(long, value_name = "REF")]
        in_diff: Option<String>,
        /// Only shard K of N (0-based), as `K/N`.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// One CI slice instead: a shard of one part, about 12 mutants, the next one
        /// for each commit (TESTING.md, "In CI").
        #[arg(long, conflicts_with_all = ["part", "in_diff", "shard"])]
        ci: bool,
        /// With --ci: this slice (any number; taken modulo the number of slices)
        /// instead of the commit count's.
        #[arg(long, requires = "ci", value_name = "I")]
        slice: Option<usize>,
        /// More arguments for cargo-mutants (after `--`), e.g. `-- --list`.
        #[arg(last = true)]
        extra: Vec<String>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Migrate {
            data_dir,
            database_url,
            status,
        } => {
            // The CLI's global flags come before its subcommand. The URL is handed on
            // as given: the CLI parses it (xtask links none of our crates), and its
            // errors name the flag, never the password.
            let mut args: Vec<OsString> = Vec::new();
            if let Some(dir) = data_dir {
                args.extend(["--data-dir".into(), dir.into_os_string()]);
            }
            if let Some(url) = database_url {
                args.extend(["--database-url".into(), url]);
            }
            args.push("migrate".into());
            if status {
                args.push("--status".into());
            }
            cargo_run(&["--quiet", "--package", "botmaker-cli"], &args)
        }
        Command::Ci => ci::run().map(|()| ExitCode::SUCCESS),
        Command::Mutants {
            ci: true,
            slice,
            extra,
            ..
        } => mutants::run_ci_slice(slice, true, &extra).map(|()| ExitCode::SUCCESS),
        Command::Mutants {
            part,
            in_diff,
            shard,
            extra,
            ..
        } => mutants::run(&mutants::Selection {
            part,
            in_diff,
            shard,
            extra,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Stress { secs, seed } => {
            let mut args: Vec<OsString> = vec!["--secs".into(), secs.to_string().into()];
            if let Some(seed) = seed {
                args.extend(["--seed".into(), seed.to_string().into()]);
            }
            cargo_run(&["--quiet", "--package", "botmaker-stress"], &args)
        }
        Command::Bench {
            n,
            m,
            threads,
            raw,
            only_async,
            database_url,
        } => {
            // Benchmarks only mean something in a release build.
            eprintln!("bench: building and running in release mode");
            let mut args: Vec<OsString> = vec![
                "--n".into(),
                n.to_string().into(),
                "--m".into(),
                m.to_string().into(),
                "--threads".into(),
                threads.to_string().into(),
            ];
            if raw {
                args.push("--raw".into());
            }
            if only_async {
                args.push("--only-async".into());
            }
            if let Some(url) = database_url {
                args.extend(["--database-url".into(), url]);
            }
            cargo_run(
                &["--release", "--quiet", "--package", "botmaker-bench"],
                &args,
            )
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo run OPTIONS -- ARGS` in this workspace, from the current directory (a relative
/// `--data-dir` means what the user meant), passing stdout, stderr and the exit code
/// through unchanged: the binary speaks for itself.
fn cargo_run(options: &[&str], args: &[OsString]) -> anyhow::Result<ExitCode> {
    let root = ci::workspace_root()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .arg("run")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(options)
        .arg("--")
        .args(args)
        .status()?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: say so, since the binary could not.
        None => anyhow::bail!("{status}"),
    })
}
