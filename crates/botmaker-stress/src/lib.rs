//! The reliability campaign (RELIABILITY.md), run by `cargo xtask stress [--secs S]
//! [--seed X]` (the `botmaker-stress` binary). Its parts run one after the other, each
//! for a share of the time:
//!
//! - `secret-writer`: children rotating secrets, SIGKILLed at random moments;
//! - `database-writer`: children writing bots through `SqliteStore`, SIGKILLed;
//! - `postgres-writer`: the same writes through `PgStore` on a PostgreSQL server of
//!   the campaign's own, SIGKILLed, and the server restarted once under a writer;
//! - `facade-writer`: children creating and deleting bots with their secrets through
//!   `Botmaker`, SIGKILLed; the doctor repairs what they leave;
//! - `contention`: 8 processes and 8 threads on one installation;
//! - `hostile-library` and `hostile-cli`: a generated corpus of hostile input;
//! - `symlink-swap`: `renameat2(RENAME_EXCHANGE)` races against every operation.
//!
//! It prints one line of counts per part and the seed, and fails if any check failed.
//! The processes it kills are the `botmaker-stress-child` binary ([`child`]). The
//! reliability tests (`tests/reliability`) call each part's `run` for a second or two,
//! so the campaign's code is the code the test suite runs.
//!
//! A harness, not a product crate: it reports with `anyhow` and prints its tallies.
#![allow(clippy::print_stdout)] // the campaign's report is its output

pub mod common;
pub mod contention;
pub mod db_crash;
pub mod facade_crash;
pub mod hostile;
pub mod pg_crash;
pub mod secrets_crash;
pub mod symlink_race;
pub mod values;

use std::time::{Duration, Instant};

use anyhow::Result;

use botmaker_testkit::rng::Rng;
use common::{ChildBinary, Deadline, Tally};

/// Each part's share of the run, in per cent.
const SHARES: [(&str, u64); 8] = [
    ("secret-writer", 22),
    ("database-writer", 20),
    ("postgres-writer", 10),
    ("facade-writer", 8),
    ("contention", 6),
    ("hostile-library", 25),
    ("hostile-cli", 6),
    ("symlink-swap", 3),
];

/// Runs the campaign for `secs` seconds.
pub fn run(secs: u64, seed: Option<u64>) -> Result<()> {
    let seed = seed.unwrap_or_else(Rng::fresh_seed);
    let mut rng = Rng::new(seed);
    let child_bin = ChildBinary::beside_current_exe()?;
    let started = Instant::now();
    println!("stress: {secs} s, seed {seed} (replay with --seed {seed})");
    let share = |part: &str| {
        let pct = SHARES
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(0, |(_, s)| *s);
        Deadline::after(Duration::from_millis(secs * 10 * pct))
    };
    let cli = build_cli().and_then(|()| {
        hostile::cli_binary()
            .ok_or_else(|| "no botmaker binary next to the botmaker-stress binary".to_owned())
    });
    let mut tallies: Vec<Tally> = Vec::new();
    let mut record = |t: Tally| {
        println!("{t}");
        tallies.push(t);
    };
    record(secrets_crash::run(
        &child_bin,
        share("secret-writer"),
        &mut rng.fork(),
        2,
    )?);
    record(db_crash::run(
        &child_bin,
        share("database-writer"),
        &mut rng.fork(),
    )?);
    record(pg_crash::run(
        &child_bin,
        share("postgres-writer"),
        &mut rng.fork(),
    )?);
    record(facade_crash::run(
        &child_bin,
        share("facade-writer"),
        &mut rng.fork(),
    )?);
    record(contention::run(
        &child_bin,
        share("contention"),
        &mut rng.fork(),
    )?);
    record(hostile::run_library(
        share("hostile-library"),
        &mut rng.fork(),
        500,
    )?);
    match cli {
        Ok(bin) => {
            println!("hostile-cli: using {}", bin.display());
            record(hostile::run_cli(
                &bin,
                share("hostile-cli"),
                &mut rng.fork(),
            )?);
        }
        Err(reason) => println!(
            "hostile-cli: skipped: {reason} (the CLI's own tests run a hostile corpus too)"
        ),
    }
    record(symlink_race::run(share("symlink-swap"))?);

    let failures: u64 = tallies.iter().map(|t| t.failures).sum();
    let get = |part: &str, f: &dyn Fn(&Tally) -> u64| {
        tallies
            .iter()
            .filter(|t| t.part == part)
            .map(f)
            .sum::<u64>()
    };
    println!(
        "stress: {:.0} s, seed {seed}: {} secret-writer kills, {} database-writer kills, {} postgres-writer kills ({} server restarts), {} facade-writer kills, {} hostile inputs ({} through the CLI), {} symlink-swap iterations, {} contention operations; {failures} failures",
        started.elapsed().as_secs_f64(),
        get("secret-writer", &|t| t.kills),
        get("database-writer", &|t| t.kills),
        get("postgres-writer", &|t| t.kills),
        get("postgres-writer", &|t| t.get("server-restarts")),
        get("facade-writer", &|t| t.kills),
        get("hostile-library", &|t| t.get("inputs")) + get("hostile-cli", &|t| t.get("inputs")),
        get("hostile-cli", &|t| t.get("inputs")),
        get("symlink-swap", &|t| t.get("iterations")),
        get("contention", &|t| t.ops),
    );
    anyhow::ensure!(failures == 0, "stress: {failures} failures (seed {seed})");
    Ok(())
}

/// Builds the `botmaker` binary next to this one (same profile, same target
/// directory), so the CLI part tests the current code. Only under cargo (`cargo
/// xtask stress`), which sets `CARGO`.
fn build_cli() -> Result<(), String> {
    if std::env::var_os("CARGO").is_none() {
        return Err("not started by cargo, so the botmaker binary cannot be built".to_owned());
    }
    println!("hostile-cli: building the botmaker binary");
    cargo_build("botmaker-cli", "botmaker")
}

/// Builds the child binary next to this one when started by cargo, so a campaign never
/// kills a stale build of the code it checks (`cargo run` builds only the binary it
/// runs). Without cargo, the child binary must already be there.
pub fn build_children() -> Result<()> {
    if std::env::var_os("CARGO").is_some() {
        cargo_build("botmaker-stress", common::CHILD_BINARY).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// `cargo build --quiet -p PACKAGE --bin BIN`, in this executable's profile.
fn cargo_build(package: &str, bin: &str) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--package", package, "--bin", bin]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("building the {bin} binary failed ({s})")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// The `botmaker-stress-child` binary's work: the first argument names the part, the
/// rest are that part's (each part's `child` documents them).
pub fn child(args: &[String]) -> Result<()> {
    match args.split_first() {
        Some((part, rest)) if part == "secrets-writer" => secrets_crash::child(rest),
        Some((part, rest)) if part == "db-writer" => db_crash::child(rest),
        Some((part, rest)) if part == "pg-writer" => pg_crash::child(rest),
        Some((part, rest)) if part == "facade-writer" => facade_crash::child(rest),
        Some((part, rest)) if part == "contention" => contention::child(rest),
        _ => anyhow::bail!("unknown stress child {args:?}"),
    }
}
