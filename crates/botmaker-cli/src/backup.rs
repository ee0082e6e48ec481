//! `botmaker backup DIR`, `botmaker backup --verify DIR`, `botmaker restore DIR`:
//! results on stdout; progress on stderr (at most once a second, and at the end of
//! each phase) when stderr is a terminal or `--progress` is given.

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use botmaker::Config;
use botmaker::backup::{Phase, Progress};

use crate::Outcome;

/// How often progress is printed at most.
const EVERY: Duration = Duration::from_secs(1);

/// A progress callback that prints a line on stderr at most once a second, and one
/// when a phase ends; silent unless `show` (`--progress`, or stderr is a terminal).
fn reporter(show: bool) -> impl FnMut(Progress) {
    let show = show || std::io::stderr().is_terminal();
    let mut last = Instant::now();
    move |p: Progress| {
        if show && (last.elapsed() >= EVERY || p.done == p.total) {
            last = Instant::now();
            let what = match p.phase {
                Phase::Secrets => "bots copied",
                Phase::Verify => "files verified",
                Phase::Restore => "secrets restored",
                _ => "done",
            };
            eprint_progress(&format!("{}/{} {what}", p.done, p.total));
        }
    }
}

#[allow(clippy::print_stderr)] // progress goes to stderr, results to stdout
fn eprint_progress(line: &str) {
    eprintln!("progress: {line}");
}

/// `backup [--verify] DIR`.
pub(crate) fn backup(
    config: &Config,
    dir: &Path,
    verify: bool,
    progress: bool,
    out: &mut impl Write,
) -> Result<Outcome> {
    if verify {
        let r = botmaker::verify_backup(dir, reporter(progress))?;
        writeln!(
            out,
            "backup {} is complete: {} bots, {} secrets, {} bytes, schema version {}, taken {}",
            dir.display(),
            r.bots,
            r.secrets,
            r.bytes,
            r.schema_version,
            r.created_at
        )?;
        if r.needs_migration {
            writeln!(
                out,
                "its schema is older than this botmaker's ({}); restore migrates it",
                botmaker::sqlite::LATEST_VERSION
            )?;
        }
        return Ok(Outcome::Success);
    }
    let r = botmaker::backup(config, dir, reporter(progress))?;
    writeln!(
        out,
        "backed up {} bots, {} secrets ({} bytes, schema version {}) to {} in {} ms \
         (lock held {:.1} ms)",
        r.bots,
        r.secrets,
        r.bytes,
        r.schema_version,
        dir.display(),
        r.elapsed.as_millis(),
        r.lock_held.as_secs_f64() * 1000.0
    )?;
    if r.left_out > 0 {
        writeln!(
            out,
            "left out {} bots deleted while the backup ran",
            r.left_out
        )?;
    }
    writeln!(
        out,
        "the secrets in it are plaintext: keep it private (0700) or encrypt it at rest"
    )?;
    Ok(Outcome::Success)
}

/// `restore DIR`.
pub(crate) fn restore(
    config: &Config,
    dir: &Path,
    progress: bool,
    out: &mut impl Write,
) -> Result<Outcome> {
    let r = botmaker::restore(config, dir, reporter(progress))?;
    writeln!(
        out,
        "restored {} bots, {} secrets (schema version {}) from {}",
        r.bots,
        r.secrets,
        r.schema_version,
        dir.display()
    )?;
    if let Some(migrated) = &r.migrated {
        writeln!(out, "the backup's schema was older; migrated:")?;
        write!(out, "{migrated}")?;
    }
    write!(out, "{}", r.doctor)?;
    Ok(if r.doctor.is_healthy() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}
