//! What the parts share: tallies, deadlines, scratch directories, child processes and
//! their line protocol.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How many failure messages a part keeps (all are counted).
const KEPT_FAILURES: usize = 20;

/// What one part of the campaign did.
#[derive(Debug, Default)]
pub struct Tally {
    /// The part's name.
    pub part: &'static str,
    /// Operations performed (by children as far as they acknowledged them, and in
    /// process).
    pub ops: u64,
    /// Child processes SIGKILLed.
    pub kills: u64,
    /// Invariant checks that passed or failed.
    pub checks: u64,
    /// Failed checks.
    pub failures: u64,
    /// The first failure messages.
    pub messages: Vec<String>,
    /// Part-specific counts, printed after the standard ones.
    pub extra: Vec<(&'static str, u64)>,
}

impl Tally {
    /// An empty tally for part `part`.
    pub fn new(part: &'static str) -> Self {
        Self {
            part,
            ..Self::default()
        }
    }

    /// Records one check: `Ok` passes, `Err(message)` fails.
    pub fn check(&mut self, outcome: Result<(), String>) {
        self.checks += 1;
        if let Err(m) = outcome {
            self.fail(m);
        }
    }

    /// Records a failure outside a check (a child reported one, setup failed).
    pub fn fail(&mut self, message: String) {
        self.failures += 1;
        if self.messages.len() < KEPT_FAILURES {
            self.messages.push(message);
        }
    }

    /// Adds `n` to the part-specific count `name`.
    pub fn add(&mut self, name: &'static str, n: u64) {
        match self.extra.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.extra.push((name, n)),
        }
    }

    /// The part-specific count `name` (0 if never added).
    pub fn get(&self, name: &str) -> u64 {
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
pub struct Deadline {
    at: Instant,
    min: u64,
}

impl Deadline {
    /// After `d`, however few rounds were done (the campaign: a share of its time).
    pub fn after(d: Duration) -> Self {
        Self {
            at: Instant::now() + d,
            min: 0,
        }
    }

    /// After `d`, but not before `min` rounds.
    pub fn at_least(d: Duration, min: u64) -> Self {
        Self {
            at: Instant::now() + d,
            min,
        }
    }

    /// Whether the time is up, whatever the rounds.
    pub fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether a loop that has done `rounds` rounds should stop.
    pub fn over(self, rounds: u64) -> bool {
        rounds >= self.min && self.passed()
    }

    /// The time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Keeps a part's scratch directory for a post-mortem when the part had failures, and
/// names it among the failures, so the last line of a failed run says where to look.
pub fn keep_if_failed(scratch: &mut Scratch, tally: &mut Tally) {
    if scratch.keep_if(tally.failures > 0) {
        tally.fail(format!(
            "scratch directory kept: {}",
            scratch.path().display()
        ));
    }
}

/// The program the campaign SIGKILLs: the `botmaker-stress-child` binary, started with
/// real arguments (`botmaker-stress-child PART ARGS...`, see [`crate::child`]).
#[derive(Clone, Debug)]
pub struct ChildBinary {
    exe: PathBuf,
}

/// The child binary's name, as Cargo.toml declares it.
pub const CHILD_BINARY: &str = "botmaker-stress-child";

impl ChildBinary {
    /// The child binary at `exe` (a test passes `env!("CARGO_BIN_EXE_botmaker-stress-child")`).
    pub fn at(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into() }
    }

    /// The child binary beside the running executable: cargo builds every binary of a
    /// package into the same directory.
    pub fn beside_current_exe() -> Result<Self> {
        let exe = std::env::current_exe().context("locating the running executable")?;
        let exe = exe
            .parent()
            .context("the running executable has no directory")?
            .join(CHILD_BINARY);
        anyhow::ensure!(
            exe.is_file(),
            "{} is missing (cargo build -p botmaker-stress builds it)",
            exe.display()
        );
        Ok(Self { exe })
    }

    /// The command for one child, with its stdout and stderr piped.
    pub fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts a child with piped stdout.
    pub fn spawn(&self, args: &[String]) -> Result<Running> {
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

/// Protocol lines start with this marker (a library the child uses may print before it on the
/// same line).
pub const MARK: &str = "@@ ";

/// Prints one protocol line on stdout and flushes it, so that the parent has it even
/// if this process is SIGKILLed right after.
pub fn say(line: &str) {
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
pub fn replay<Op>(
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
pub fn payload(line: &str) -> Option<&str> {
    line.find(MARK).map(|i| &line[i + MARK.len()..])
}

/// A running child process and its protocol lines.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: BufReader<ChildStdout>,
    /// Protocol lines read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Reads protocol lines until one equals `want` (true) or the output ends (false).
    pub fn wait_for(&mut self, want: &str) -> bool {
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
    pub fn kill_at_random(
        &mut self,
        rng: &mut Rng,
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
    pub fn kill_and_collect(&mut self) -> Result<bool> {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).context("pid")?);
        kill(pid, Signal::SIGKILL).context("kill")?;
        let status = self.child.wait().context("wait")?;
        self.collect_rest();
        Ok(!status.success() && status.code().is_none())
    }

    /// Waits for the child to exit on its own, then reads the rest of its lines.
    /// Returns its stderr when it failed.
    pub fn finish(mut self) -> Result<Result<Vec<String>, String>> {
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
pub fn sleep_us(micros: u64) {
    std::thread::sleep(Duration::from_micros(micros));
}
