//! What the parts share: tallies, deadlines, scratch directories, child processes and
//! their line protocol.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How many failure messages a part keeps (all are counted).
const KEPT_FAILURES: usize = 20;

/// What one part of the campaign did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// The part's name.
    pub(crate) part: &'static str,
    /// Operations performed (by children as far as they acknowledged them, and in
    /// process).
    pub(crate) ops: u64,
    /// Child processes SIGKILLed.
    pub(crate) kills: u64,
    /// Invariant checks that passed or failed.
    pub(crate) checks: u64,
    /// Failed checks.
    pub(crate) failures: u64,
    /// The first failure messages.
    pub(crate) messages: Vec<String>,
    /// Part-specific counts, printed after the standard ones.
    pub(crate) extra: Vec<(&'static str, u64)>,
}

impl Tally {
    pub(crate) fn new(part: &'static str) -> Self {
        Self {
            part,
            ..Self::default()
        }
    }

    /// Records one check: `Ok` passes, `Err(message)` fails.
    pub(crate) fn check(&mut self, outcome: Result<(), String>) {
        self.checks += 1;
        if let Err(m) = outcome {
            self.fail(m);
        }
    }

    /// Records a failure outside a check (a child reported one, setup failed).
    pub(crate) fn fail(&mut self, message: String) {
        self.failures += 1;
        if self.messages.len() < KEPT_FAILURES {
            self.messages.push(message);
        }
    }

    /// Adds `n` to the part-specific count `name`.
    pub(crate) fn add(&mut self, name: &'static str, n: u64) {
        match self.extra.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.extra.push((name, n)),
        }
    }

    /// The part-specific count `name` (0 if never added).
    pub(crate) fn get(&self, name: &str) -> u64 {
        self.extra
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<16} ops {:>8}  kills {:>6}  checks {:>8}  failures {}",
            self.part, self.ops, self.kills, self.checks, self.failures
        )?;
        for (k, v) in &self.extra {
            write!(f, "  {k} {v}")?;
        }
        for m in &self.messages {
            write!(f, "\n    FAILURE: {m}")?;
        }
        Ok(())
    }
}

/// When a part must stop: at a time, and (for the tests, whose assertions must not
/// depend on the machine's speed) not before it has done at least `min` rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    min: u64,
}

impl Deadline {
    pub(crate) fn after(d: Duration) -> Self {
        Self {
            at: Instant::now() + d,
            min: 0,
        }
    }

    /// After `d`, but not before `min` rounds.
    #[allow(dead_code)] // used by the reliability tests, which include this module
    pub(crate) fn at_least(d: Duration, min: u64) -> Self {
        Self {
            at: Instant::now() + d,
            min,
        }
    }

    pub(crate) fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether a loop that has done `rounds` rounds should stop.
    pub(crate) fn over(self, rounds: u64) -> bool {
        rounds >= self.min && self.passed()
    }

    pub(crate) fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// A scratch directory (0700) removed on drop, unless `keep` was called (a part that
/// failed keeps its directory for inspection).
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    pub(crate) fn new(part: &str) -> Result<Self> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "botmaker-stress-{part}-{}-{attempt}-{}",
                std::process::id(),
                super::rng::Rng::seed_from_clock() % 1_000_000
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path, keep: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        anyhow::bail!("cannot create a scratch directory in {}", base.display())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }

    /// Keeps the directory for a post-mortem when the part had failures, and says where.
    pub(crate) fn keep_if_failed(&mut self, tally: &mut Tally) {
        if tally.failures > 0 {
            self.keep();
            tally.fail(format!("scratch directory kept: {}", self.path.display()));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// How the campaign starts its child processes: `xtask stress-child ARGS` from the
/// xtask binary, or the test binary re-running one test with the arguments in an
/// environment variable.
#[derive(Clone, Debug)]
pub(crate) struct Launcher {
    exe: PathBuf,
    prefix: Vec<OsString>,
    env: Option<&'static str>,
}

/// The separator of arguments passed in an environment variable.
pub(crate) const ARG_SEPARATOR: char = '\u{1f}';

impl Launcher {
    /// `<this executable> stress-child ARGS`.
    pub(crate) fn xtask() -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("locating the xtask executable")?,
            prefix: vec!["stress-child".into()],
            env: None,
        })
    }

    /// `<this test binary> --exact TEST --nocapture` with `ENV=ARGS` (joined by
    /// [`ARG_SEPARATOR`]).
    #[allow(dead_code)] // used by the reliability tests, which include this module
    pub(crate) fn test_binary(test: &str, env: &'static str) -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("locating the test executable")?,
            prefix: [
                "--exact",
                test,
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ]
            .into_iter()
            .map(OsString::from)
            .collect(),
            env: Some(env),
        })
    }

    pub(crate) fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.prefix);
        match self.env {
            None => {
                cmd.args(args);
            }
            Some(var) => {
                let joined: Vec<&str> = args.iter().map(String::as_str).collect();
                cmd.env(var, joined.join(&ARG_SEPARATOR.to_string()));
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts a child with piped stdout.
    pub(crate) fn spawn(&self, args: &[String]) -> Result<Running> {
        let mut child = self
            .command(args)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        Ok(Running {
            child,
            lines: BufReader::new(stdout),
            seen: Vec::new(),
        })
    }
}

/// Protocol lines start with this marker (the test harness may print before it on the
/// same line).
pub(crate) const MARK: &str = "@@ ";

/// Prints one protocol line on stdout and flushes it, so that the parent has it even
/// if this process is SIGKILLed right after.
pub(crate) fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    // A parent that went away cannot be told anything; the child is about to be
    // killed anyway.
    let _ = writeln!(out, "{MARK}{line}");
    let _ = out.flush();
}

/// Replays a killed child's protocol lines: each `B <op>` announces an operation and
/// the following `A` acknowledges it (counted, and handed to `acknowledged`); `F <msg>`
/// is a failure the child saw. Returns the operation in flight when it was killed.
pub(crate) fn replay<Op>(
    lines: &[String],
    parse: impl Fn(&str) -> Option<Op>,
    tally: &mut Tally,
    mut acknowledged: impl FnMut(Op),
) -> Option<Op> {
    let mut pending = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("B ") {
            pending = parse(rest);
        } else if line == "A" {
            if let Some(op) = pending.take() {
                tally.ops += 1;
                acknowledged(op);
            }
        } else if let Some(msg) = line.strip_prefix("F ") {
            tally.fail(format!("child: {msg}"));
        }
    }
    pending
}

/// The protocol payload of an output line, if it has one.
pub(crate) fn payload(line: &str) -> Option<&str> {
    line.find(MARK).map(|i| &line[i + MARK.len()..])
}

/// A running child process and its protocol lines.
#[derive(Debug)]
pub(crate) struct Running {
    child: Child,
    lines: BufReader<ChildStdout>,
    /// Protocol lines read so far.
    pub(crate) seen: Vec<String>,
}

impl Running {
    /// Reads protocol lines until one equals `want` (true) or the output ends (false).
    pub(crate) fn wait_for(&mut self, want: &str) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            match self.lines.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    if let Some(p) = payload(line.trim_end()) {
                        let found = p == want;
                        self.seen.push(p.to_owned());
                        if found {
                            return true;
                        }
                    }
                }
            }
        }
    }

    /// Kills the child at a random moment: `early_per_mille` times in a thousand within
    /// `early_max_us` of its start (while it may still be opening), otherwise within
    /// 25 ms of its `ready` line. Counts the kill when it landed on a running child.
    pub(crate) fn kill_at_random(
        &mut self,
        rng: &mut super::rng::Rng,
        early_per_mille: u64,
        early_max_us: u64,
        tally: &mut Tally,
    ) -> Result<()> {
        if rng.chance(early_per_mille) {
            sleep_us(rng.below(early_max_us));
        } else if self.wait_for("ready") {
            sleep_us(rng.below(25_000));
        }
        if self.kill_and_collect()? {
            tally.kills += 1;
        }
        Ok(())
    }

    /// SIGKILLs the child, reaps it, and reads the rest of its protocol lines.
    /// Returns whether the kill happened while it was still running.
    pub(crate) fn kill_and_collect(&mut self) -> Result<bool> {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).context("pid")?);
        kill(pid, Signal::SIGKILL).context("kill")?;
        let status = self.child.wait().context("wait")?;
        self.collect_rest();
        Ok(!status.success() && status.code().is_none())
    }

    /// Waits for the child to exit on its own, then reads the rest of its lines.
    /// Returns its stderr when it failed.
    pub(crate) fn finish(mut self) -> Result<Result<Vec<String>, String>> {
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            // Read stderr only after stdout is drained, so neither pipe can fill up
            // while the other is being waited on: stderr stays small.
            self.collect_rest();
            let _ = e.read_to_string(&mut stderr);
        } else {
            self.collect_rest();
        }
        let status = self.child.wait().context("wait")?;
        if status.success() {
            Ok(Ok(self.seen))
        } else {
            Ok(Err(format!(
                "child exited with {status}: {}",
                stderr.trim().lines().last().unwrap_or("")
            )))
        }
    }

    fn collect_rest(&mut self) {
        let mut rest = String::new();
        let _ = self.lines.read_to_string(&mut rest);
        for l in rest.lines() {
            if let Some(p) = payload(l) {
                self.seen.push(p.to_owned());
            }
        }
    }
}

/// Sleeps for `micros` microseconds.
pub(crate) fn sleep_us(micros: u64) {
    std::thread::sleep(Duration::from_micros(micros));
}
