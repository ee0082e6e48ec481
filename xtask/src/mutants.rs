//! `cargo xtask mutants`: mutation testing with cargo-mutants over the modules that
//! carry the invariants (TESTING.md). Which files, the test tool and the mutants
//! known to be equivalent (each with its reason) are in `.cargo/mutants.toml`; this
//! command picks a part of them and runs `cargo mutants` in place (the workspace's
//! `target/` is reused, so a mutant rebuilds only its crate and those above it).

use std::env;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::ci::workspace_root;

/// The parts of the run: the examined files (`examine_globs` of
/// `.cargo/mutants.toml`) of one package each, and the packages whose tests judge
/// its mutants. The secrets store's durability order (an fsync after each unlink,
/// rename or fchmod) is checked by the facade's strace tests (`power_cut.rs`), and the
/// sqlite store's checkpoint events by the facade's `events.rs`, so the facade's tests
/// run for the mutants of both.
pub(crate) const PARTS: &[(&str, &str, &[&str])] = &[
    ("domain", "botmaker-domain", &["botmaker-domain"]),
    (
        "secrets",
        "botmaker-secrets",
        &["botmaker-secrets", "botmaker"],
    ),
    (
        "sqlite",
        "botmaker-sqlite",
        &["botmaker-sqlite", "botmaker"],
    ),
    ("facade", "botmaker", &["botmaker"]),
];

/// What to run: one part or all, optionally only the mutants a diff touches, or one
/// shard `k/n` of them; `extra` goes to cargo-mutants as it is (`--list`, `-j`).
pub(crate) struct Selection {
    pub(crate) part: String,
    pub(crate) in_diff: Option<String>,
    pub(crate) shard: Option<String>,
    pub(crate) extra: Vec<String>,
}

/// The parts CI rotates over: those whose whole run has been triaged (every missed
/// mutant killed or listed as equivalent; TESTING.md). The secrets and facade parts
/// join when theirs is: until then a slice of theirs would fail CI on gaps already
/// known, not on the change under test. `cargo xtask mutants --part secrets` runs
/// them by hand.
pub(crate) const CI_PARTS: &[&str] = &["domain", "sqlite"];

/// Mutants in one CI slice: about 12 × 30 s (a mutant's build and the tests up to the
/// first failure; up to a minute when nothing fails) plus the builds, a few minutes.
pub(crate) const CI_SLICE_MUTANTS: usize = 12;

/// The test timeout of a CI slice, in seconds, instead of 5 times a baseline run (CI
/// has just run the tests): well above the slowest part's suites (the sqlite tests,
/// then the facade's, which start a PostgreSQL server: 180 s was too short once on 2
/// busy cores, for a mutant the first test had caught while a server was starting).
const CI_TIMEOUT_SECS: &str = "300";

/// Whether cargo-mutants is installed.
pub(crate) fn installed() -> bool {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(&cargo)
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The slices of a full run, in order: each part's mutants (`--list`, which applies
/// `.cargo/mutants.toml`'s files and exclusions) cut into shards of about
/// [`CI_SLICE_MUTANTS`]. As `(part, shard, shards)`.
fn ci_slices() -> Result<Vec<(&'static str, usize, usize)>> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut slices = Vec::new();
    for (part, package, _) in PARTS.iter().filter(|(part, _, _)| CI_PARTS.contains(part)) {
        let out = Command::new(&cargo)
            .args(["mutants", "--list", "--package", package])
            .output()
            .context("cargo mutants --list")?;
        if !out.status.success() {
            bail!(
                "cargo mutants --list --package {package} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mutants = String::from_utf8_lossy(&out.stdout).lines().count();
        let shards = mutants.div_ceil(CI_SLICE_MUTANTS).max(1);
        slices.extend((0..shards).map(|k| (*part, k, shards)));
    }
    Ok(slices)
}

/// The rotation: the number of commits up to HEAD, so each new commit tests the next
/// slice and a failing slice is found again from its commit.
fn commit_count() -> Result<usize> {
    let out = Command::new("git")
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .context("git rev-list --count HEAD")?;
    if !out.status.success() {
        bail!(
            "git rev-list --count HEAD failed (a CI slice needs the history): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("git rev-list --count HEAD did not print a number")
}

/// `cargo xtask mutants --ci`: one slice of the full run (a shard of one part, about
/// [`CI_SLICE_MUTANTS`] mutants), slice `index` or the next one for this commit, with
/// no baseline run when `baseline` is false (`cargo xtask ci` has just run the
/// tests); `extra` goes to cargo-mutants (`--list` shows the slice). Fails on a missed
/// mutant (not listed as equivalent) or a timeout.
pub(crate) fn run_ci_slice(index: Option<usize>, baseline: bool, extra: &[String]) -> Result<()> {
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    if !installed() {
        bail!("cargo-mutants is not installed: cargo install cargo-mutants --locked");
    }
    let slices = ci_slices()?;
    let (index, why) = match index {
        Some(i) => (i, "as asked"),
        None => (commit_count()?, "the commit count"),
    };
    let (part, k, n) = slices[index % slices.len()];
    eprintln!(
        "xtask mutants: CI slice {} of {} ({why}, {index}, modulo {}): part {part}, \
         shard {k}/{n}; again with `cargo xtask mutants --part {part} --shard {k}/{n}`",
        index % slices.len(),
        slices.len(),
        slices.len(),
    );
    let mut args: Vec<String> = vec!["--timeout".into(), CI_TIMEOUT_SECS.into()];
    if !baseline {
        args.extend(["--baseline".into(), "skip".into()]);
    }
    args.extend_from_slice(extra);
    run(&Selection {
        part: part.to_owned(),
        in_diff: None,
        shard: Some(format!("{k}/{n}")),
        extra: args,
    })
}

pub(crate) fn run(sel: &Selection) -> Result<()> {
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    if !installed() {
        bail!("cargo-mutants is not installed: cargo install cargo-mutants --locked");
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let part = if sel.part == "all" {
        None
    } else {
        match PARTS.iter().find(|(name, _, _)| *name == sel.part) {
            Some(part) => Some(part),
            None => bail!(
                "unknown part {:?}: one of all, {}",
                sel.part,
                PARTS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let mut cmd = Command::new(&cargo);
    // In place: copying the tree would copy (or rebuild) all of `target/`. The source
    // is restored after each mutant; do not edit the tree while it runs.
    cmd.args(["mutants", "--in-place", "--no-shuffle"]);
    match part {
        Some((_, package, tests)) => {
            cmd.args(["--package", package]);
            for t in *tests {
                cmd.args(["--test-package", t]);
            }
        }
        // Every package's mutants judged by the tests of the packages listed for it
        // would take a run per part; `all` runs the whole workspace's tests instead.
        None => {
            cmd.args(["--test-workspace", "true"]);
        }
    }
    if let Some(diff) = &sel.in_diff {
        let diff_file = root.join("target/mutants.diff");
        let out = Command::new("git")
            .args(["diff", &format!("{diff}...HEAD"), "--", "crates"])
            .output()
            .context("git diff")?;
        if !out.status.success() {
            bail!(
                "git diff {diff}...HEAD failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if out.stdout.is_empty() {
            eprintln!("xtask mutants: no change to the examined files since {diff}");
            return Ok(());
        }
        std::fs::create_dir_all(root.join("target"))?;
        std::fs::write(&diff_file, &out.stdout)?;
        cmd.arg("--in-diff").arg(&diff_file);
    }
    if let Some(shard) = &sel.shard {
        cmd.args(["--shard", shard]);
    }
    cmd.args(&sel.extra);
    let shown: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!("xtask mutants: $ cargo {}", shown.join(" "));
    let status = cmd.status().context("could not start cargo mutants")?;
    if !status.success() {
        bail!(
            "cargo mutants failed with {status}: a missed mutant is a gap in the tests \
             (kill it with a test, or list it as equivalent in .cargo/mutants.toml with \
             its reason); see mutants.out/missed.txt"
        );
    }
    Ok(())
}
