//! Black-box tests: the built `botmaker` binary run against temporary directories.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

mod backup;
mod database;
mod errors;
mod hostile;
mod logging;
mod owner;
mod placement;
mod postgres;
mod repair_race;
mod session;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary installation: a data dir and a secrets dir under one temp dir.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    /// `BOTMAKER_DATABASE_URL` for every run: a PostgreSQL registry (`None`: SQLite in
    /// the data dir).
    pub(crate) url: Option<String>,
}

/// What a run printed and how it ended.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from(out: Output) -> Self {
        Self {
            code: out.status.code().expect("exited, not killed by a signal"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts the documented error shape: exit 1, one `error:` line on stderr, no panic.
    #[track_caller]
    pub(crate) fn error(&self) -> &str {
        assert_eq!(
            self.code, 1,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "{:?}", self.stderr);
        assert_no_panic(&self.stderr);
        &self.stderr
    }
}

#[track_caller]
pub(crate) fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

impl Env {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            url: None,
        }
    }

    /// An installation whose registry is the PostgreSQL database `url` (given in
    /// `BOTMAKER_DATABASE_URL`), its secrets in a temporary folder.
    pub(crate) fn postgres(url: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            url: Some(url.to_owned()),
        }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.data().join("botmaker.db")
    }

    /// The binary with this installation's directories in the environment (not as
    /// flags, so the environment handling is exercised too).
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_botmaker"));
        cmd.args(args)
            .env_remove("SECRETS_DIR")
            .env_remove("BOTMAKER_SECRETS_OWNER")
            .env_remove("BOTMAKER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("BOTMAKER_DATA_DIR", self.data())
            .env("BOTMAKER_SECRETS_DIR", self.secrets())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        if let Some(url) = &self.url {
            cmd.env("BOTMAKER_DATABASE_URL", url);
        }
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().unwrap())
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_with_stdin(self.cmd(args), stdin)
    }

    /// Migrated installation with one bot; returns its id.
    pub(crate) fn with_bot(&self, name: &str) -> String {
        self.run(&["migrate"]).ok();
        let out = self.run(&[
            "bot",
            "create",
            name,
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
            "--channel",
            "slack",
        ]);
        out.ok().trim().to_owned()
    }
}

/// Runs `cmd` with `stdin` piped to it.
pub(crate) fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The CLI may refuse (and exit) before reading its input: a closed pipe is fine.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    Run::from(child.wait_with_output().unwrap())
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}
