//! Reliability tests: short runs of every part of the stress campaign (the
//! `botmaker_stress` library, whose children are this package's
//! `botmaker-stress-child` binary), the durability order of a secret
//! write (traced with strace), real permission denials (in a child that dropped to
//! `nobody`), and a full disk (a small tmpfs). RELIABILITY.md describes them all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod campaign;
mod durability;
mod full_disk;
mod hostile;
mod permissions;

use std::process::{Command, Output};

/// Re-runs this test binary for one test with `env` set: the child branch of that
/// test runs (in a normal run the variable is absent and the test does its parent
/// part).
pub(crate) fn child_command(test: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a child (see [`child_command`]) and asserts it succeeded.
pub(crate) fn run_child(test: &str, env: &[(&str, &str)]) -> Output {
    let out = child_command(test, env).output().unwrap();
    assert!(
        out.status.success(),
        "child {test} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The seed of the randomised tests: `BOTMAKER_STRESS_SEED` or a fresh one (printed,
/// so a failure can be replayed).
pub(crate) fn seed() -> u64 {
    botmaker_testkit::rng::Rng::seed_from_env("BOTMAKER_STRESS_SEED")
}
