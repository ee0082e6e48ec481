//! A full disk: a small tmpfs mounted by the test. A secret write that does not fit
//! fails with a clear error (ENOSPC) and the previous value stays whole with no
//! temporary file left; a database write that does not fit fails, and the database
//! passes its integrity check with every earlier write present. Where mounting is not
//! permitted (not root, no CAP_SYS_ADMIN, no `mount`), the test fails and says what
//! is missing: CI runs as root, and a test that cannot run must not pass.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use botmaker::secrets::{SecretsError, SecretsStore};
use botmaker::sqlite::SqliteStore;
use botmaker_domain::{BotId, BotRepository, NewBot, RepoError, SecretName};

/// Unmounts on drop, also when an assertion failed.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(dir.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fills the filesystem with `path` until the next write fails; returns that error.
fn fill(path: &Path) -> std::io::Error {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 4096];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            return e;
        }
    }
}

/// A 512 KiB tmpfs under `tmp`, or a failed test naming what is missing.
fn mount_small(tmp: &Path) -> Mount {
    Mount::tmpfs(&tmp.join("small"), "512k").unwrap_or_else(|reason| {
        panic!(
            "cannot mount a tmpfs here ({reason}): the full-disk tests need root (or \
             CAP_SYS_ADMIN) and util-linux `mount`, as in CI (`.ci/run` runs as root)"
        )
    })
}

#[test]
fn secret_write_on_a_full_disk_fails_clearly_and_keeps_the_old_value() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = mount_small(tmp.path());
    let root = mount.0.join("secrets");
    let store = SecretsStore::open(&root).unwrap();
    let bot = BotId::generate();
    let key: SecretName = "ai_api_key".parse().unwrap();
    let old = vec![b'o'; 8 * 1024];
    store.write(&bot, &key, &old).unwrap();

    let filled = fill(&mount.0.join("filler"));
    assert_eq!(filled.raw_os_error(), Some(nix::libc::ENOSPC), "{filled}");
    let new = vec![b'n'; 48 * 1024];
    let err = store.write(&bot, &key, &new).unwrap_err();
    let text = err.to_string();
    println!("write on a full disk: {text}");
    assert!(matches!(err, SecretsError::Io { .. }), "{err:?}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains(&bot.to_string()), "{text}");
    // The old value, whole; no temporary file left behind.
    assert_eq!(store.read(&bot, &key).unwrap().expose(), old.as_slice());
    let entries: Vec<String> = std::fs::read_dir(root.join(bot.to_string()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["ai_api_key"]);
    assert!(store.audit().unwrap().is_clean());

    // Space again: the write goes through.
    std::fs::remove_file(mount.0.join("filler")).unwrap();
    store.write(&bot, &key, &new).unwrap();
    assert_eq!(store.read(&bot, &key).unwrap().expose(), new.as_slice());
}

#[test]
fn database_write_on_a_full_disk_fails_and_the_database_stays_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = mount_small(tmp.path());
    let db = mount.0.join("botmaker.db");
    botmaker::sqlite::migrate(&db).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let new_bot = |i: usize| {
        NewBot::new(
            format!("bot-{i}").parse().unwrap(),
            "openai".parse().unwrap(),
            "gpt-4o".parse().unwrap(),
            "slack".parse().unwrap(),
        )
    };
    let mut stored = Vec::new();
    for i in 0..20 {
        stored.push(store.create(&new_bot(i)).unwrap());
    }
    let _ = fill(&mount.0.join("filler"));
    // Writes until one fails: the WAL cannot grow.
    let mut failure = None;
    for i in 20..20_000 {
        match store.create(&new_bot(i)) {
            Ok(bot) => stored.push(bot),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.expect("a full disk never failed a write");
    let text = err.to_string();
    println!("database write on a full disk: {text}");
    assert!(matches!(err, RepoError::Backend { .. }), "{err:?}");
    assert!(text.contains("full") || text.contains("space"), "{text}");
    // It names the database.
    assert!(text.contains(db.to_str().unwrap()), "{text}");

    std::fs::remove_file(mount.0.join("filler")).unwrap();
    drop(store);
    let store = SqliteStore::open(&db).unwrap();
    assert!(store.integrity_check().unwrap().is_empty());
    for bot in &stored {
        assert_eq!(&store.get(&bot.id).unwrap(), bot);
    }
    store.create(&new_bot(99_999)).unwrap();
}
