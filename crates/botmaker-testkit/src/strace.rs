//! Reading `strace -f -o FILE` output (with or without `-y`): the durability tests
//! check the order of system calls (write, fsync, rename) that a crash or a power cut
//! depends on.

use std::collections::HashMap;

/// One traced system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The call's name (`fsync`, `renameat`, …).
    pub name: String,
    /// Its arguments, as strace printed them.
    pub args: String,
    /// Its return value (the first word after ` = `).
    pub ret: String,
}

impl Call {
    /// The first argument (with `-y`, a descriptor and its path: `5</d/x>`).
    pub fn first(&self) -> &str {
        self.args.split(',').next().unwrap_or("").trim()
    }

    /// The path behind the first argument's descriptor under `-y` (`5</d/x>` gives
    /// `/d/x`); empty without one.
    pub fn fd_path(&self) -> &str {
        let first = self.first();
        first
            .find('<')
            .and_then(|open| first.strip_suffix('>').map(|f| &f[open + 1..]))
            .unwrap_or("")
    }

    /// The `n`th argument, unquoted: a name given to a `*at` call.
    pub fn arg(&self, n: usize) -> &str {
        self.args.split(", ").nth(n).unwrap_or("").trim_matches('"')
    }

    /// The `n`th quoted string among the arguments.
    pub fn quoted(&self, n: usize) -> Option<String> {
        self.args.split('"').nth(2 * n + 1).map(str::to_owned)
    }
}

/// Parses `strace -f -o` output (`PID name(args) = ret`), joining the
/// `<unfinished ...>` and `<... name resumed>` halves of a call that another thread
/// interrupted.
///
/// ```
/// let calls = botmaker_testkit::strace::parse(
///     "7 fsync(5</d/botmaker.db-wal> <unfinished ...>\n\
///      8 openat(AT_FDCWD, \"/x\", O_RDONLY) = -1 ENOENT (No such file or directory)\n\
///      7 <... fsync resumed>) = 0\n",
/// );
/// assert_eq!(calls.len(), 2);
/// assert_eq!((calls[1].name.as_str(), calls[1].fd_path()), ("fsync", "/d/botmaker.db-wal"));
/// assert_eq!((calls[0].quoted(0).as_deref(), calls[0].ret.as_str()), (Some("/x"), "-1"));
/// ```
pub fn parse(trace: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut unfinished: HashMap<String, String> = HashMap::new();
    for line in trace.lines() {
        let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        let full = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid.to_owned(), head.trim_end().to_owned());
            continue;
        } else if rest.starts_with("<...") {
            let Some(head) = unfinished.remove(pid) else {
                continue;
            };
            let tail = rest.split_once("resumed>").map_or("", |(_, t)| t);
            format!("{head}{tail}")
        } else {
            rest.to_owned()
        };
        // strace pads short calls: `fsync(5)                = 0`.
        let (Some(open), Some(eq)) = (full.find('('), full.rfind(" = ")) else {
            continue;
        };
        let Some(close) = full[..eq].rfind(')').filter(|c| *c > open) else {
            continue;
        };
        calls.push(Call {
            name: full[..open].to_owned(),
            args: full[open + 1..close].to_owned(),
            ret: full[eq + 3..].split(' ').next().unwrap_or("").to_owned(),
        });
    }
    calls
}
