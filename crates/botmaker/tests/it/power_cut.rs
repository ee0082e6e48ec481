//! Power cuts: a killed process leaves its writes in the page cache, a power cut
//! loses what was not fsynced. The order of `delete_bot` is checked from its system
//! calls (traced with `strace -y`, which prints the path behind every descriptor): the
//! row delete must be durable (an fsync of the database's WAL, or of its main file,
//! after the delete's write to it) *before* the bot's directory is renamed to trash,
//! which a later open sweeps. Otherwise a power cut can bring the row back without
//! its secrets. The store-level delete, which the benchmark measures, must stay
//! without an fsync.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use botmaker::domain::BotId;
use botmaker::{Botmaker, Config};

use crate::{Install, new_bot, required};

const DIR_ENV: &str = "BOTMAKER_IT_POWER_CUT_DIR";
const BOT_ENV: &str = "BOTMAKER_IT_POWER_CUT_BOT";
/// `facade` (`Botmaker::delete_bot`) or `store` (`SqliteStore::delete`).
const MODE_ENV: &str = "BOTMAKER_IT_POWER_CUT_MODE";
/// Opened (and not found) around the traced call, so the trace shows where it starts
/// and ends.
const MARK_START: &str = "/nonexistent-botmaker-power-cut-start";
const MARK_END: &str = "/nonexistent-botmaker-power-cut-end";

/// One traced system call: its name, its first argument (with `-y`, a descriptor's
/// path: `5</dir/botmaker.db-wal>`) and all its arguments.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
}

impl Call {
    fn first(&self) -> &str {
        self.args.split(',').next().unwrap_or("").trim()
    }
}

/// Parses `strace -f -o` output, joining `<unfinished ...>` and `<... resumed>`
/// halves.
fn parse(trace: &str) -> Vec<Call> {
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
        let (Some(open), Some(eq)) = (full.find('('), full.rfind(" = ")) else {
            continue;
        };
        let Some(close) = full[..eq].rfind(')').filter(|c| *c > open) else {
            continue;
        };
        calls.push(Call {
            name: full[..open].to_owned(),
            args: full[open + 1..close].to_owned(),
        });
    }
    calls
}

/// The child: deletes the bot, through the facade or the store, between two marks.
#[test]
fn power_cut_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        // In a normal run: the parser joins split calls and keeps `-y` paths.
        let calls = parse(
            "7 fsync(5</d/botmaker.db-wal> <unfinished ...>\n\
             8 openat(AT_FDCWD, \"/x\", O_RDONLY) = -1 ENOENT (No such file or directory)\n\
             7 <... fsync resumed>) = 0\n",
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[1].name.as_str(), calls[1].first()),
            ("fsync", "5</d/botmaker.db-wal>")
        );
        return;
    };
    let dir = Path::new(&dir);
    let config = Config::new(dir.join("data"), dir.join("secrets"));
    let bm = Botmaker::open(&config).unwrap();
    let id: BotId = std::env::var(BOT_ENV).unwrap().parse().unwrap();
    let bot = bm.resolve(&id.into()).unwrap();
    // A first write: it starts a new WAL, whose header SQLite fsyncs; the deletes
    // below are then writes of a running store, as in the benchmark.
    {
        use botmaker::domain::BotRepository;
        bm.store().create(&new_bot("warm-up")).unwrap();
    }
    let _ = std::fs::File::open(MARK_START);
    match std::env::var(MODE_ENV).unwrap().as_str() {
        "facade" => drop(bm.delete_bot(&bot).unwrap()),
        "store" => {
            use botmaker::domain::BotRepository;
            bm.store().delete(&bot.id).unwrap();
        }
        other => panic!("unknown mode {other}"),
    }
    let _ = std::fs::File::open(MARK_END);
}

/// An installation with one bot (and its secrets), and the calls of deleting it in
/// a traced child, between the marks.
fn traced_delete(mode: &str) -> (Install, Vec<Call>) {
    let strace_ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        strace_ok,
        "strace is not installed: this test traces a bot deletion with it. `.ci/run` installs \
         it (apt-get install strace); install it the same way to run the tests locally"
    );
    let install = Install::new();
    let bot = install
        .open()
        .create_bot(&new_bot("doomed"), &required())
        .unwrap();
    let dir = install.config.secrets_dir().parent().unwrap().to_owned();
    let trace_file = dir.join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-y", "-s", "128", "-e"])
        .arg("trace=openat,write,pwrite64,writev,pwritev,fsync,fdatasync,sync_file_range,rename,renameat,renameat2")
        .arg("-o")
        .arg(&trace_file)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "power_cut::power_cut_child", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, &dir)
        .env(BOT_ENV, bot.id.to_string())
        .env(MODE_ENV, mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "traced child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = parse(&std::fs::read_to_string(&trace_file).unwrap());
    let mark = |m: &str| {
        calls
            .iter()
            .position(|c| c.name == "openat" && c.args.contains(m))
            .unwrap_or_else(|| panic!("mark {m} not traced"))
    };
    let (start, end) = (mark(MARK_START), mark(MARK_END));
    let window = calls[start + 1..end].to_vec();
    (install, window)
}

/// Whether a call's descriptor is the database: its WAL or its main file.
fn on_database(call: &Call, config: &Config) -> bool {
    let db = config.database_path().display().to_string();
    let fd = call.first();
    fd.ends_with(&format!("<{db}-wal>")) || fd.ends_with(&format!("<{db}>"))
}

/// The calls for a failure message: each with its descriptor (renames in full).
fn summary(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            if c.name.starts_with("rename") {
                format!("{}({})", c.name, c.args)
            } else {
                format!("{}({}, ...)", c.name, c.first())
            }
        })
        .collect()
}

fn is_sync(c: &Call) -> bool {
    matches!(c.name.as_str(), "fsync" | "fdatasync")
}

fn is_write(c: &Call) -> bool {
    matches!(c.name.as_str(), "write" | "pwrite64" | "writev" | "pwritev")
}

#[test]
fn delete_bot_makes_the_row_delete_durable_before_trashing_the_directory() {
    let (install, calls) = traced_delete("facade");
    let shown = summary(&calls);
    let trashed = calls
        .iter()
        .position(|c| c.name.starts_with("rename") && c.args.contains("\".trash-"))
        .unwrap_or_else(|| panic!("the directory was not renamed to trash: {shown:#?}"));
    let last_db_write = calls[..trashed]
        .iter()
        .rposition(|c| is_write(c) && on_database(c, &install.config))
        .unwrap_or_else(|| panic!("the row delete wrote nothing to the database: {shown:#?}"));
    let synced = calls[last_db_write..trashed]
        .iter()
        .any(|c| is_sync(c) && on_database(c, &install.config));
    assert!(
        synced,
        "no fsync of the database between the row delete's write and the rename of the \
         directory to trash: a power cut can bring the row back without its secrets: \
         {shown:#?}"
    );
    let bm = install.open();
    assert_eq!(bm.list_bots(None).unwrap().len(), 1);
    assert!(bm.secrets().bots().unwrap().is_empty());
}

#[test]
fn the_store_level_delete_issues_no_fsync() {
    let (install, calls) = traced_delete("store");
    let shown = summary(&calls);
    assert!(
        calls
            .iter()
            .any(|c| is_write(c) && on_database(c, &install.config)),
        "the delete wrote nothing to the database: {shown:#?}"
    );
    assert!(
        !calls.iter().any(is_sync),
        "the store-level delete (the benchmark's) fsyncs: {shown:#?}"
    );
}
