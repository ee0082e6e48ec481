//! The durability order of a secret write, proven from the system calls themselves: a
//! child writing one secret runs under `strace`, and the trace must show
//! `write(tmp fd)` → `fsync(tmp fd)` → `renameat(dir, tmp, dir, name)` →
//! `fsync(dir fd)`, with the descriptors traced back to the paths they were opened at.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use botmaker_domain::{BotId, SecretName};
use botmaker_secrets::SecretsStore;
use botmaker_testkit::strace::{Call, parse};

const ROOT_ENV: &str = "BOTMAKER_RELIABILITY_DURABILITY_ROOT";
const BOT: &str = "0192f5a4-1b2c-7d3e-8f40-112233445566";
const VALUE: &[u8] = b"durable-value-0123456789";
/// Set (to anything) in the child that creates a new bot and deletes the old one.
const CREATE_DELETE_ENV: &str = "BOTMAKER_RELIABILITY_DURABILITY_CREATE_DELETE";
const NEW_BOT: &str = "0192f5a4-1b2c-7d3e-8f40-aabbccddeeff";
/// Set (to anything) in the child that removes the secret instead of writing it.
const REMOVE_ENV: &str = "BOTMAKER_RELIABILITY_DURABILITY_REMOVE";

/// The write, fsync and rename events of a trace, with each descriptor replaced by
/// the name it was opened at (followed through `dup` and `close`).
fn events(calls: &[Call]) -> Vec<(&'static str, String)> {
    let mut fds: HashMap<String, String> = HashMap::new();
    let mut events = Vec::new();
    let opened = |c: &Call| c.ret.parse::<i32>().is_ok_and(|fd| fd >= 0);
    for c in calls {
        match c.name.as_str() {
            "openat" | "openat2" | "open" => {
                if let Some(path) = c.quoted(0)
                    && opened(c)
                {
                    fds.insert(c.ret.clone(), path);
                }
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let duplicates = c.name != "fcntl" || c.args.contains("F_DUPFD");
                if duplicates
                    && opened(c)
                    && let Some(path) = fds.get(c.first()).cloned()
                {
                    fds.insert(c.ret.clone(), path);
                }
            }
            "close" => {
                fds.remove(c.first());
            }
            "write" | "pwrite64" | "writev" => {
                if let Some(path) = fds.get(c.first()).filter(|p| p.starts_with(".tmp-")) {
                    events.push(("write", path.clone()));
                }
            }
            "fsync" | "fdatasync" => {
                if let Some(path) = fds.get(c.first()) {
                    events.push(("fsync", path.clone()));
                }
            }
            "renameat" | "renameat2" => {
                let from = c.quoted(0).unwrap_or_default();
                let to = c.quoted(1).unwrap_or_default();
                let dir = fds.get(c.first()).cloned().unwrap_or_default();
                let flags_zero = c.name == "renameat" || c.args.trim_end().ends_with(", 0");
                if c.ret == "0" {
                    events.push((
                        "rename",
                        format!("{dir}/{from}->{to} flags_zero={flags_zero}"),
                    ));
                }
            }
            "mkdirat" | "unlinkat" if c.ret == "0" => {
                let dir = fds.get(c.first()).cloned().unwrap_or_default();
                let name = c.quoted(0).unwrap_or_default();
                let kind = if c.name == "mkdirat" {
                    "mkdir"
                } else {
                    "unlink"
                };
                events.push((kind, format!("{dir}/{name}")));
            }
            _ => {}
        }
    }
    events
}

/// The child: opens the store and writes one secret (the bot directory exists).
#[test]
fn durability_child_or_parser() {
    if let Ok(root) = std::env::var(ROOT_ENV) {
        let store = SecretsStore::open(Path::new(&root)).unwrap();
        let bot: BotId = BOT.parse().unwrap();
        let name: SecretName = "ai_api_key".parse().unwrap();
        if std::env::var_os(REMOVE_ENV).is_some() {
            store.remove(&bot, &name).unwrap();
        } else if std::env::var_os(CREATE_DELETE_ENV).is_some() {
            store
                .write(&NEW_BOT.parse().unwrap(), &name, VALUE)
                .unwrap();
            store.delete_bot(&bot).unwrap();
        } else {
            store.write(&bot, &name, VALUE).unwrap();
        }
        return;
    }
    // In a normal run: the parser joins split calls and reads descriptors and names.
    let calls = parse(
        "7 openat(4, \".tmp-1\", O_WRONLY|O_CREAT|O_EXCL, 0600) = 5\n\
         7 fsync(5 <unfinished ...>\n\
         8 write(1, \"x\", 1)          = 1\n\
         7 <... fsync resumed>) = 0\n",
    );
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (calls[0].ret.as_str(), calls[0].quoted(0).as_deref()),
        ("5", Some(".tmp-1"))
    );
    assert_eq!(
        (
            calls[2].name.as_str(),
            calls[2].first(),
            calls[2].ret.as_str()
        ),
        ("fsync", "5", "0")
    );
}

/// Runs the child under strace (with `env` added) and returns its system calls.
fn trace(tmp: &Path, root: &Path, env: &[(&str, &str)]) -> Vec<Call> {
    let strace_ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        strace_ok,
        "strace is not installed: this test traces a secret write with it. `.ci/run` installs it \
         (apt-get install strace); install it the same way to run the tests locally"
    );
    let trace_file = tmp.join("trace");
    let mut vars = vec![(ROOT_ENV, root.to_str().unwrap())];
    vars.extend_from_slice(env);
    let child = crate::child_command("durability::durability_child_or_parser", &vars);
    let out = Command::new("strace")
        .args(["-f", "-qq", "-s", "64", "-e"])
        .arg("trace=openat,openat2,open,write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,mkdirat,unlinkat,close,dup,dup2,dup3,fcntl")
        .arg("-o")
        .arg(&trace_file)
        .arg(child.get_program())
        .args(child.get_args())
        .envs(child.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "traced child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&std::fs::read_to_string(&trace_file).unwrap())
}

#[test]
fn secret_write_is_write_fsync_rename_fsync_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let bot: BotId = BOT.parse().unwrap();
    let name: SecretName = "ai_api_key".parse().unwrap();
    // An old value, so the write is a rotation (the bot directory exists).
    SecretsStore::open(&root)
        .unwrap()
        .write(&bot, &name, b"old")
        .unwrap();

    let calls = trace(tmp.path(), &root, &[]);
    let events = events(&calls);
    eprintln!("events: {events:#?}");
    let tmp_name = events
        .iter()
        .find(|(k, _)| *k == "write")
        .map(|(_, p)| p.clone())
        .expect("no write to a .tmp- file was traced");
    let pos = |kind: &str, what: &str| {
        events
            .iter()
            .position(|(k, p)| *k == kind && p == what)
            .unwrap_or_else(|| panic!("no {kind} of {what}: {events:#?}"))
    };
    let last_write = events
        .iter()
        .rposition(|(k, p)| *k == "write" && *p == tmp_name)
        .unwrap();
    let fsync_file = pos("fsync", &tmp_name);
    let rename = pos(
        "rename",
        &format!("{BOT}/{tmp_name}->ai_api_key flags_zero=true"),
    );
    let fsync_dir = events
        .iter()
        .rposition(|(k, p)| *k == "fsync" && *p == BOT)
        .unwrap_or_else(|| panic!("the bot directory was never fsynced: {events:#?}"));
    assert!(
        last_write < fsync_file,
        "the file is fsynced before its last write: {events:#?}"
    );
    assert!(
        fsync_file < rename,
        "renamed before the file was fsynced: {events:#?}"
    );
    assert!(
        rename < fsync_dir,
        "the directory is not fsynced after the rename: {events:#?}"
    );
}

/// A new bot directory is made durable in the root before its first secret lands; a
/// deleted bot is renamed to a trash name and the root fsynced before anything in it
/// is removed.
#[test]
fn new_bot_and_deleted_bot_fsync_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let bot: BotId = BOT.parse().unwrap();
    let name: SecretName = "ai_api_key".parse().unwrap();
    SecretsStore::open(&root)
        .unwrap()
        .write(&bot, &name, b"old")
        .unwrap();

    let calls = trace(tmp.path(), &root, &[(CREATE_DELETE_ENV, "1")]);
    let events = events(&calls);
    eprintln!("events: {events:#?}");
    let root_path = root.to_str().unwrap();
    let find = |from: usize, f: &dyn Fn(&str, &str) -> bool| {
        events
            .iter()
            .skip(from)
            .position(|(k, p)| f(k, p))
            .map(|i| i + from)
    };
    let is_root_fsync = |k: &str, p: &str| k == "fsync" && p == root_path;

    // Creating: mkdirat(root, id), then fsync(root), before the secret is renamed in.
    let mkdir = find(0, &|k, p| {
        k == "mkdir" && p == format!("{root_path}/{NEW_BOT}")
    })
    .unwrap_or_else(|| panic!("no mkdirat of the new bot: {events:#?}"));
    let root_synced = find(mkdir, &is_root_fsync)
        .unwrap_or_else(|| panic!("the root is not fsynced after mkdirat: {events:#?}"));
    let secret_in = find(mkdir, &|k, p| {
        k == "rename" && p.starts_with(&format!("{NEW_BOT}/.tmp-"))
    })
    .unwrap_or_else(|| panic!("the new bot's secret was never renamed in: {events:#?}"));
    assert!(
        root_synced < secret_in,
        "the new directory is not durable before its secret: {events:#?}"
    );

    // Deleting: renameat(root, id, root, .trash-…), fsync(root), then the removal.
    let trashed = find(0, &|k, p| {
        k == "rename" && p.starts_with(&format!("{root_path}/{BOT}->.trash-"))
    })
    .unwrap_or_else(|| panic!("the bot directory was not renamed to a trash name: {events:#?}"));
    let synced = find(trashed, &is_root_fsync)
        .unwrap_or_else(|| panic!("the root is not fsynced after the rename: {events:#?}"));
    let first_unlink = find(trashed, &|k, _| k == "unlink")
        .unwrap_or_else(|| panic!("nothing was removed: {events:#?}"));
    assert!(
        synced < first_unlink,
        "removal started before the rename was durable: {events:#?}"
    );
    let store = SecretsStore::open(&root).unwrap();
    assert_eq!(
        store.bots().unwrap(),
        vec![NEW_BOT.parse::<BotId>().unwrap()]
    );
}

/// Removing a secret: `unlinkat(dir, name)`, then `fsync(dir)` before `remove`
/// returns, or a power cut brings the removed credential back.
#[test]
fn secret_remove_is_unlink_then_fsync_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let bot: BotId = BOT.parse().unwrap();
    let name: SecretName = "ai_api_key".parse().unwrap();
    let store = SecretsStore::open(&root).unwrap();
    store.write(&bot, &name, b"old").unwrap();
    store
        .write(&bot, &"channel_token".parse().unwrap(), b"kept")
        .unwrap();
    drop(store);

    let calls = trace(tmp.path(), &root, &[(REMOVE_ENV, "1")]);
    let events = events(&calls);
    eprintln!("events: {events:#?}");
    let unlink = events
        .iter()
        .position(|(k, p)| *k == "unlink" && *p == format!("{BOT}/ai_api_key"))
        .unwrap_or_else(|| panic!("no unlinkat of the secret: {events:#?}"));
    assert!(
        events[unlink..]
            .iter()
            .any(|(k, p)| *k == "fsync" && p == BOT),
        "the bot directory is not fsynced after the unlink: {events:#?}"
    );
    let store = SecretsStore::open(&root).unwrap();
    assert_eq!(
        store
            .list(&bot)
            .unwrap()
            .iter()
            .map(|m| m.name.to_string())
            .collect::<Vec<_>>(),
        ["channel_token"]
    );
}
