//! Power cuts: a killed process leaves its writes in the page cache, a power cut
//! loses what was not fsynced. Each cross-store operation runs in a child traced with
//! `strace -f -y` (which prints the path behind every descriptor), and its calls are
//! checked for one thing: every step that cannot be undone on one store comes after
//! the fsync that makes the other store's step durable, so a power cut can only leave
//! a secrets directory without a row (an orphan, which the doctor quarantines), never
//! a row without its secrets.
//! - `delete_bot`: the row delete is durable (an fsync of the database's WAL, or of
//!   its main file, after the delete's write to it) *before* the bot's directory is
//!   renamed to trash, which a later open sweeps. The store-level delete, which the
//!   benchmark measures, stays without an fsync.
//! - `create_bot`: the bot directory (root fsynced after its mkdirat) and each secret
//!   (temp file fsynced, renamed, directory fsynced) are durable before the row's
//!   first write to the database.
//! - `rotate_secret`, `set_secret`: the temp file is fsynced before it is renamed over
//!   the old value, and the directory after, before the call returns.
//! - the doctor's quarantine: the root is fsynced after the orphan is renamed into
//!   `.quarantine`, and none of the orphan's files is unlinked.
//! - `remove_secret`: the directory is fsynced after the secret's unlink, before the
//!   call returns (or a power cut brings the removed credential back).
//! - the doctor's repair of modes: each `fchmod` of a secret file or a bot directory
//!   is followed by an fsync of that same inode before the doctor returns (a mode is
//!   inode metadata: a power cut must not bring the loose mode back).
//! - `migrate`: a new data directory's parent is fsynced after its mkdir, the
//!   directory after the database file is created, and every file written (database,
//!   WAL, journal) after its last write.
//!
//! The model is the order of fsyncs against irrecoverable steps only: it builds no
//! crash states and replays nothing (no ALICE-style file-system model).

use std::path::Path;
use std::process::Command;

use botmaker::domain::BotId;
use botmaker::{Botmaker, Config};

use botmaker_testkit::strace::{Call, parse};

use crate::{Install, new_bot, required};

const DIR_ENV: &str = "BOTMAKER_IT_POWER_CUT_DIR";
const BOT_ENV: &str = "BOTMAKER_IT_POWER_CUT_BOT";
/// `facade` (`Botmaker::delete_bot`) or `store` (`SqliteStore::delete`).
const MODE_ENV: &str = "BOTMAKER_IT_POWER_CUT_MODE";
/// Opened (and not found) around the traced call, so the trace shows where it starts
/// and ends.
const MARK_START: &str = "/nonexistent-botmaker-power-cut-start";
const MARK_END: &str = "/nonexistent-botmaker-power-cut-end";

/// The child: runs one operation between two marks (after a set-up that the trace
/// leaves out): `facade` and `store` delete the bot, `create` creates one with its
/// secrets, `rotate` and `set` replace one of its secrets, `quarantine` runs the
/// doctor's fix over an orphan directory, `migrate` creates a fresh database.
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
    let mode = std::env::var(MODE_ENV).unwrap();
    let mark = |m: &str| drop(std::fs::File::open(m));
    if mode == "quarantine" {
        mark(MARK_START);
        let report = Botmaker::doctor(&config, true);
        mark(MARK_END);
        assert!(report.is_healthy(), "{report}");
        return;
    }
    if mode == "repair" {
        mark(MARK_START);
        let report = Botmaker::doctor(&config, true);
        mark(MARK_END);
        assert!(report.is_healthy(), "{report}");
        return;
    }
    if mode == "migrate" {
        let fresh = Config::new(dir.join("fresh-data"), dir.join("fresh-secrets"));
        mark(MARK_START);
        botmaker::migrate(&fresh).unwrap();
        mark(MARK_END);
        return;
    }
    let bm = Botmaker::open(&config).unwrap();
    // A first write: it starts a new WAL, whose header SQLite fsyncs; the operations
    // below are then writes of a running store, as in the benchmark.
    bm.registry().create(&new_bot("warm-up")).unwrap();
    if mode == "create" {
        mark(MARK_START);
        bm.create_bot(&new_bot("fresh"), &required()).unwrap();
        mark(MARK_END);
        return;
    }
    let id: BotId = std::env::var(BOT_ENV).unwrap().parse().unwrap();
    let bot = bm.resolve(&id.into()).unwrap();
    let name = &required()[0].0;
    mark(MARK_START);
    match mode.as_str() {
        "facade" => drop(bm.delete_bot(&bot).unwrap()),
        "store" => bm.registry().delete(&bot.id).unwrap(),
        "rotate" => bm.rotate_secret(&bot, name, b"rotated").unwrap(),
        "set" => bm.set_secret(&bot, name, b"set again").unwrap(),
        "remove" => bm.remove_secret(&bot, name).unwrap(),
        other => panic!("unknown mode {other}"),
    }
    mark(MARK_END);
}

/// Checks that strace is there: the power-cut tests trace operations with it.
fn require_strace() {
    let strace_ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        strace_ok,
        "strace is not installed: this test traces a bot deletion with it. `.ci/run` installs \
         it (apt-get install strace); install it the same way to run the tests locally"
    );
}

/// An installation (with one bot and its secrets when `with_bot`), and the calls of
/// the child's `mode` operation in a traced child, between the marks.
fn traced(mode: &str, with_bot: bool) -> (Install, Vec<Call>) {
    require_strace();
    let install = Install::new();
    let bot = with_bot.then(|| {
        install
            .open()
            .create_bot(&new_bot("doomed"), &required())
            .unwrap()
    });
    let calls = trace_child(&install, mode, bot.map(|b| b.id));
    (install, calls)
}

/// Runs the child's `mode` operation on `install` under strace; the calls between
/// the marks.
fn trace_child(install: &Install, mode: &str, bot: Option<BotId>) -> Vec<Call> {
    let dir = install.config.secrets_dir().parent().unwrap().to_owned();
    let trace_file = dir.join(format!("trace-{mode}"));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-y", "-s", "128", "-e"])
        .arg(
            "trace=openat,write,pwrite64,writev,pwritev,fsync,fdatasync,sync_file_range,\
             rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat,rmdir,fchmod",
        )
        .arg("-o")
        .arg(&trace_file)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "power_cut::power_cut_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, &dir)
        .env(MODE_ENV, mode);
    if let Some(id) = bot {
        cmd.env(BOT_ENV, id.to_string());
    }
    let out = cmd.output().unwrap();
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
    calls[start + 1..end].to_vec()
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
            let creates = c.name == "openat" && c.args.contains("O_CREAT");
            if creates
                || ["rename", "mkdir", "unlink", "rmdir"]
                    .iter()
                    .any(|n| c.name.starts_with(n))
            {
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
    let (install, calls) = traced("facade", true);
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
    // And of its directory: a WAL file made since the last checkpoint is lost with
    // its frames if its name is not durable.
    let data_dir = install.config.database_path();
    let data_dir = data_dir.parent().unwrap().display().to_string();
    assert!(
        calls[last_db_write..trashed]
            .iter()
            .any(|c| syncs(c, &data_dir)),
        "no fsync of the data directory {data_dir} before the rename of the directory \
         to trash: {shown:#?}"
    );
    let bm = install.open();
    assert_eq!(bm.list_bots(None).unwrap().len(), 1);
    assert!(bm.secrets().bots().unwrap().is_empty());
}

#[test]
fn the_store_level_delete_issues_no_fsync() {
    let (install, calls) = traced("store", true);
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

/// Whether a call fsyncs the descriptor of `path`.
fn syncs(c: &Call, path: &str) -> bool {
    is_sync(c) && c.fd_path() == path
}

/// Whether a call writes to the descriptor of `path`.
fn writes(c: &Call, path: &str) -> bool {
    is_write(c) && c.fd_path() == path
}

/// The renames (`renameat`) of a temp file over a secret, in order.
fn secret_renames(calls: &[Call]) -> Vec<usize> {
    calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name.starts_with("renameat") && c.arg(1).starts_with(".tmp-"))
        .map(|(i, _)| i)
        .collect()
}

/// The rename at `calls[r]` of a temp file over a secret comes after an fsync of the
/// temp file that follows its last write: a power cut after the rename shows the
/// whole new value, never an empty or torn file under the secret's name.
fn assert_temp_synced_before_rename(calls: &[Call], r: usize, shown: &[String]) {
    let temp = format!("{}/{}", calls[r].fd_path(), calls[r].arg(1));
    let last_write = calls[..r]
        .iter()
        .rposition(|c| writes(c, &temp))
        .unwrap_or_else(|| panic!("nothing written to {temp} before its rename: {shown:#?}"));
    assert!(
        calls[last_write..r].iter().any(|c| syncs(c, &temp)),
        "{temp} is renamed over the secret without an fsync after its last write: a power \
         cut can leave the secret empty or torn: {shown:#?}"
    );
}

#[test]
fn create_bot_makes_the_directory_and_secrets_durable_before_writing_the_row() {
    let (install, calls) = traced("create", false);
    let shown = summary(&calls);
    let root = install.config.secrets_dir().display().to_string();
    let row = calls
        .iter()
        .position(|c| is_write(c) && on_database(c, &install.config))
        .unwrap_or_else(|| panic!("the row insert wrote nothing to the database: {shown:#?}"));
    let made = calls
        .iter()
        .position(|c| c.name == "mkdirat" && c.fd_path() == root)
        .unwrap_or_else(|| panic!("no mkdirat of the bot directory in {root}: {shown:#?}"));
    let bot_dir = format!("{root}/{}", calls[made].arg(1));
    assert!(
        made < row && calls[made..row].iter().any(|c| syncs(c, &root)),
        "no fsync of the secrets root between the mkdirat of {bot_dir} and the row's first \
         write: a power cut can keep the row and lose the directory: {shown:#?}"
    );
    let renames = secret_renames(&calls);
    assert_eq!(renames.len(), required().len(), "{shown:#?}");
    for &r in &renames {
        assert_eq!(calls[r].fd_path(), bot_dir, "{shown:#?}");
        assert!(
            r < row,
            "a secret is renamed after the row is written: {shown:#?}"
        );
        assert_temp_synced_before_rename(&calls, r, &shown);
    }
    let last = renames[renames.len() - 1];
    assert!(
        calls[last..row].iter().any(|c| syncs(c, &bot_dir)),
        "no fsync of {bot_dir} between the last secret's rename and the row's first write: \
         a power cut can keep the row and lose a secret: {shown:#?}"
    );
}

/// `rotate_secret` (`rotate`) or `set_secret` (`set`) over an existing secret: the temp
/// file is durable before it replaces the old value, and the rename is durable
/// before the call returns.
fn check_replace(mode: &str) {
    let (_install, calls) = traced(mode, true);
    let shown = summary(&calls);
    let renames = secret_renames(&calls);
    assert_eq!(renames.len(), 1, "one rename over the secret: {shown:#?}");
    let r = renames[0];
    assert_temp_synced_before_rename(&calls, r, &shown);
    let dir = calls[r].fd_path();
    assert!(
        calls[r..].iter().any(|c| syncs(c, dir)),
        "{mode}: no fsync of {dir} after the rename over the secret, before the call \
         returns: a power cut can bring the old value back: {shown:#?}"
    );
}

#[test]
fn rotate_secret_syncs_the_temp_file_before_the_rename_and_the_directory_after() {
    check_replace("rotate");
}

#[test]
fn set_secret_syncs_the_temp_file_before_the_rename_and_the_directory_after() {
    check_replace("set");
}

#[test]
fn the_doctors_quarantine_is_durable_and_deletes_nothing() {
    require_strace();
    let install = Install::new();
    // An orphan: a bot directory with secrets and no row, made through the store.
    let id = new_bot("orphan").id;
    {
        let bm = install.open();
        assert!(bm.secrets().create_bot(&id).unwrap());
        for (name, value) in required() {
            bm.secrets().write(&id, &name, value).unwrap();
        }
    }
    let calls = trace_child(&install, "quarantine", None);
    let shown = summary(&calls);
    let root = install.config.secrets_dir().display().to_string();
    let quarantine = format!("{root}/.quarantine");
    let id = id.to_string();
    let moved = calls
        .iter()
        .position(|c| {
            c.name.starts_with("rename")
                && c.fd_path() == root
                && c.arg(1) == id
                && c.arg(2).ends_with(&format!("<{quarantine}>"))
        })
        .unwrap_or_else(|| panic!("the orphan was not renamed into {quarantine}: {shown:#?}"));
    assert!(
        calls[moved..].iter().any(|c| syncs(c, &root)),
        "no fsync of the secrets root after the orphan's rename into the quarantine, before \
         the doctor returns: a power cut can bring the orphan back: {shown:#?}"
    );
    let removed: Vec<&String> = calls
        .iter()
        .zip(&shown)
        .filter(|(c, _)| matches!(c.name.as_str(), "unlink" | "unlinkat" | "rmdir"))
        .filter(|(c, _)| c.args.contains(&id))
        .map(|(_, line)| line)
        .collect();
    assert!(
        removed.is_empty(),
        "the doctor deleted the orphan's files: {removed:#?}"
    );
    let kept: Vec<_> = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_dir(&kept[0]).unwrap().count(),
        required().len()
    );
}

#[test]
fn remove_secret_fsyncs_the_directory_after_the_unlink() {
    let (install, calls) = traced("remove", true);
    let shown = summary(&calls);
    let name = required()[0].0.to_string();
    let root = install.config.secrets_dir().display().to_string();
    let unlinked = calls
        .iter()
        .position(|c| c.name == "unlinkat" && c.fd_path().starts_with(&root) && c.arg(1) == name)
        .unwrap_or_else(|| panic!("no unlinkat of {name} in a bot directory: {shown:#?}"));
    let dir = calls[unlinked].fd_path();
    assert!(
        calls[unlinked..].iter().any(|c| syncs(c, dir)),
        "no fsync of {dir} after the unlink of {name}, before remove_secret returns: a \
         power cut can bring the removed secret back: {shown:#?}"
    );
    let bm = install.open();
    let bot = bm.list_bots(None).unwrap().remove(0);
    assert!(
        !bm.list_secrets(&bot)
            .unwrap()
            .iter()
            .any(|m| m.name.as_str() == name),
        "{name} is still listed"
    );
}

#[test]
fn the_doctors_mode_repair_is_durable() {
    require_strace();
    let install = Install::new();
    let bot = install
        .open()
        .create_bot(&new_bot("loose"), &required())
        .unwrap();
    let dir = install.config.secrets_dir().join(bot.id.to_string());
    let file = dir.join(required()[0].0.as_str());
    let set_mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    };
    set_mode(&file, 0o640);
    set_mode(&dir, 0o750);
    let calls = trace_child(&install, "repair", None);
    let shown = summary(&calls);
    for (path, what) in [(&file, "secret file"), (&dir, "bot directory")] {
        let path = path.display().to_string();
        let chmod = calls
            .iter()
            .position(|c| c.name == "fchmod" && c.fd_path() == path && c.ret == "0")
            .unwrap_or_else(|| panic!("the {what} {path} was not fchmod-ed: {shown:#?}"));
        assert!(
            calls[chmod..].iter().any(|c| syncs(c, &path)),
            "no fsync of the {what} {path} after its fchmod, before the doctor returns: a \
             power cut can bring the loose mode back: {shown:#?}"
        );
    }
    let meta = |p: &Path| std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(p).unwrap());
    assert_eq!(meta(&file) & 0o7777, 0o600);
    assert_eq!(meta(&dir) & 0o7777, 0o700);
}

#[test]
fn migrate_makes_the_new_database_and_its_directory_entry_durable() {
    let (install, calls) = traced("migrate", false);
    let shown = summary(&calls);
    let top = install.config.secrets_dir().parent().unwrap().to_owned();
    let top = top.display().to_string();
    let dir = format!("{top}/fresh-data");
    // The data directory is new too: its entry in its parent must be durable, or a
    // power cut loses the directory and the database in it.
    let made = calls
        .iter()
        .position(|c| c.name == "mkdir" && c.arg(0) == dir)
        .unwrap_or_else(|| panic!("{dir} was not created: {shown:#?}"));
    assert!(
        calls[made..].iter().any(|c| syncs(c, &top)),
        "no fsync of {top} after the mkdir of the data directory {dir}: a power cut can \
         lose the directory and the database in it: {shown:#?}"
    );
    // Only the folders whose entries changed: none above {top}, which existed (an
    // fsync costs time, and opening a folder to fsync it needs read permission on it).
    for above in Path::new(&top).ancestors().skip(1) {
        let above = above.display().to_string();
        assert!(
            !calls.iter().any(|c| syncs(c, &above)),
            "migrate fsynced {above}, which it did not change: {shown:#?}"
        );
    }
    let db = format!("{dir}/botmaker.db");
    let created = calls
        .iter()
        .position(|c| {
            c.name == "openat"
                && c.args.contains(&format!("\"{db}\""))
                && c.args.contains("O_CREAT")
        })
        .unwrap_or_else(|| panic!("{db} was not created: {shown:#?}"));
    assert!(
        calls[created..].iter().any(|c| syncs(c, &dir)),
        "no fsync of {dir} after {db} is created: a power cut can lose the database file's \
         directory entry: {shown:#?}"
    );
    let mut written = 0;
    for file in [db.clone(), format!("{db}-wal"), format!("{db}-journal")] {
        let Some(last) = calls.iter().rposition(|c| writes(c, &file)) else {
            continue;
        };
        written += 1;
        assert!(
            calls[last..].iter().any(|c| syncs(c, &file)),
            "{file} is not fsynced after its last write, before migrate returns: {shown:#?}"
        );
    }
    assert!(
        calls.iter().any(|c| writes(c, &db)),
        "migrate wrote nothing to {db}: {shown:#?}"
    );
    assert!(written >= 2, "{shown:#?}");
}
