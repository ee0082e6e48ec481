//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure; the
//! last is one rotating slice of mutation testing.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs every check. Each step prints its command first.
pub(crate) fn run() -> Result<()> {
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;

    // First, and before anything compiles SQLite (xtask itself does not link it): a
    // formatting slip is the cheapest failure to report.
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // The facade's features build on their own (a secrets-only or PostgreSQL service
    // compiles no SQLite).
    for features in [
        &["--features", "secrets"][..],
        &["--features", "sqlite"],
        // PostgreSQL without SQLite, for a service and on its own.
        &["--features", "secrets,postgres"],
        &["--features", "postgres"],
        // The async adapter over the secrets alone, and over the registry alone.
        &["--features", "secrets,tokio"],
        &["--features", "tokio"],
        &[],
    ] {
        let mut args = vec!["check", "--package", "botmaker", "--no-default-features"];
        args.extend_from_slice(features);
        cargo(&args, &[])?;
    }
    tests()?;
    // The short reliability campaign (RELIABILITY.md); the long one is for releases.
    cargo(
        &[
            "run",
            "--quiet",
            "--package",
            "botmaker-stress",
            "--",
            "--secs",
            "20",
        ],
        &[],
    )?;
    deny(&root)?;
    mutants_slice()?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

/// The test suite: nextest for the unit, integration and property tests (each test in
/// its own process, which the umask and crash tests rely on), then the doctests, which
/// nextest does not run.
fn tests() -> Result<()> {
    if has_cargo_subcommand("nextest") {
        cargo(
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-fail-fast",
            ],
            &[],
        )?;
    } else {
        eprintln!("xtask ci: cargo-nextest not found, running the tests with cargo test");
        cargo(
            &[
                "test",
                "--workspace",
                "--all-features",
                "--lib",
                "--bins",
                "--tests",
                "--no-fail-fast",
            ],
            &[],
        )?;
    }
    cargo(&["test", "--workspace", "--all-features", "--doc"], &[])
}

/// One rotating slice of mutation testing (about 12 mutants, a few minutes; TESTING.md,
/// "In CI"): a missed mutant fails CI. Without a baseline run: the tests just passed.
fn mutants_slice() -> Result<()> {
    if !crate::mutants::installed() {
        if env::var_os("CI").is_some() {
            bail!("cargo-mutants is not installed (CI installs it in .ci/run)");
        }
        eprintln!(
            "xtask ci: WARNING: cargo-mutants is not installed, skipping the mutation \
             testing slice (cargo install cargo-mutants --locked)"
        );
        return Ok(());
    }
    eprintln!("xtask ci: $ cargo xtask mutants --ci");
    crate::mutants::run_ci_slice(None, false, &[])
}

/// cargo-deny: bans, licenses and sources always; advisories against the offline
/// snapshot in `../shared/advisory-db` when it is there.
fn deny(root: &Path) -> Result<()> {
    if !has_cargo_subcommand("deny") {
        if env::var_os("CI").is_some() {
            bail!("cargo-deny is not installed (CI installs it in .ci/run)");
        }
        eprintln!(
            "xtask ci: WARNING: cargo-deny is not installed, skipping it (cargo install cargo-deny --locked)"
        );
        return Ok(());
    }
    // cargo-deny reads `cargo metadata` for every platform; fetch first (from the
    // registry, which CI reaches), then let cargo-deny itself run offline.
    cargo(&["fetch", "--locked"], &[])?;
    cargo(
        &["deny", "--offline", "check", "bans", "licenses", "sources"],
        &[],
    )?;
    let snapshot = root.join("../shared/advisory-db");
    if snapshot.join("crates").is_dir() {
        let db_root = install_advisory_snapshot(root, &snapshot)?;
        let db_root = db_root.to_string_lossy().into_owned();
        cargo(
            &["deny", "--offline", "check", "advisories"],
            &[("BOTMAKER_ADVISORY_DB", &db_root)],
        )?;
    } else {
        eprintln!(
            "xtask ci: no advisory snapshot at {}, skipping advisories",
            snapshot.display()
        );
    }
    Ok(())
}

/// cargo-deny reads its database from a git checkout named `advisory-db-<hash of the
/// URL>` beneath its `db-path`; lay the read-only snapshot out that way (once) under
/// `target/`, never touching the user's own `~/.cargo/advisory-dbs`.
fn install_advisory_snapshot(root: &Path, snapshot: &Path) -> Result<PathBuf> {
    let db_root = root.join("target/advisory-dbs");
    let checkout = db_root.join(ADVISORY_DB_DIR);
    if checkout.join(".git").is_dir() {
        return Ok(db_root);
    }
    if checkout.exists() {
        fs::remove_dir_all(&checkout).with_context(|| format!("remove {}", checkout.display()))?;
    }
    fs::create_dir_all(&db_root)?;
    exec(Command::new("cp").arg("-r").arg(snapshot).arg(&checkout))?;
    exec(Command::new("chmod").args(["-R", "u+w"]).arg(&checkout))?;
    let git = |args: &[&str]| {
        exec(
            Command::new("git")
                .arg("-C")
                .arg(&checkout)
                .args([
                    "-c",
                    "user.name=xtask",
                    "-c",
                    "user.email=xtask@localhost",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args),
        )
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "offline advisory snapshot"])?;
    Ok(db_root)
}

/// The directory name cargo-deny derives from the default advisory database URL.
const ADVISORY_DB_DIR: &str = "advisory-db-3157b0e258782691";

fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    eprintln!("xtask ci: $ cargo {}", args.join(" "));
    exec(&mut cmd)
}

fn exec(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", cmd.get_program().display()))?;
    if !status.success() {
        let args: Vec<_> = cmd.get_args().map(OsStr::to_string_lossy).collect();
        bail!(
            "`{} {}` failed with {status}",
            cmd.get_program().display(),
            args.join(" ")
        );
    }
    Ok(())
}

fn has_cargo_subcommand(name: &str) -> bool {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args([name, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn workspace_root() -> Result<PathBuf> {
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .context("run through `cargo xtask`")?;
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}
