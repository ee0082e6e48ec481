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
/// `.cargo/mutants.toml`) of one package each.
pub(crate) const PARTS: &[(&str, &str)] = &[
    ("domain", "botmaker-domain"),
    ("secrets", "botmaker-secrets"),
    ("sqlite", "botmaker-sqlite"),
    ("facade", "botmaker"),
];

/// What to run: one part or all, optionally only the mutants a diff touches, or one
/// shard `k/n` of them; `extra` goes to cargo-mutants as it is (`--list`, `-j`).
pub(crate) struct Selection {
    pub(crate) part: String,
    pub(crate) in_diff: Option<String>,
    pub(crate) shard: Option<String>,
    pub(crate) extra: Vec<String>,
}

pub(crate) fn run(sel: &Selection) -> Result<()> {
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new(&cargo)
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        bail!("cargo-mutants is not installed: cargo install cargo-mutants --locked");
    }
    let package = if sel.part == "all" {
        None
    } else {
        match PARTS.iter().find(|(name, _)| *name == sel.part) {
            Some((_, package)) => Some(*package),
            None => bail!(
                "unknown part {:?}: one of all, {}",
                sel.part,
                PARTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let mut cmd = Command::new(&cargo);
    // In place: copying the tree would copy (or rebuild) all of `target/`. The source
    // is restored after each mutant; do not edit the tree while it runs.
    cmd.args(["mutants", "--in-place", "--no-shuffle"]);
    if let Some(package) = package {
        cmd.args(["--package", package]);
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
