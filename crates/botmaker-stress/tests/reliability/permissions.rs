//! Real permission denials. CI runs as root, which ignores permission bits, so the
//! checks run in a child that first drops to `nobody` (uid/gid 65534) with
//! `setgroups`/`setgid`/`setuid`; the parent prepares the directories as root.
//! As an ordinary user, the cases that need no second user run directly.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use botmaker::secrets::{SecretsError, SecretsStore};
use botmaker::sqlite::SqliteStore;
use botmaker::{Botmaker, Config};
use botmaker_domain::{BotId, SecretName};
use nix::unistd::{Gid, Uid, geteuid, setgid, setgroups, setuid};

const DIR_ENV: &str = "BOTMAKER_RELIABILITY_PERMISSIONS_DIR";
const NOBODY: u32 = 65_534;
/// A user that is neither root nor `nobody` (`daemon` on Debian).
const OTHER: u32 = 1;
const BOT: &str = "0192f5a4-1b2c-7d3e-8f40-112233445566";

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn own(p: &Path, uid: u32) {
    chown(p, Some(uid), Some(uid)).unwrap();
}

struct Layout {
    base: PathBuf,
}

impl Layout {
    /// A data directory the user cannot write, holding a migrated database.
    fn ro_data(&self) -> PathBuf {
        self.base.join("ro-data")
    }
    /// A data directory the user cannot write, with no database yet.
    fn ro_empty(&self) -> PathBuf {
        self.base.join("ro-empty")
    }
    /// A secrets root of the user's with one secret the user cannot read.
    fn secrets(&self) -> PathBuf {
        self.base.join("secrets")
    }
    /// A secrets root owned by someone else (readable by all).
    fn foreign_root(&self) -> PathBuf {
        self.base.join("foreign")
    }
}

fn bot() -> BotId {
    BOT.parse().unwrap()
}

fn key() -> SecretName {
    "ai_api_key".parse().unwrap()
}

/// Builds the layout; `as_root` hands the entries to the right owners.
fn prepare(base: &Path, as_root: bool) -> Layout {
    let l = Layout {
        base: base.to_owned(),
    };
    set_mode(base, 0o755);
    // A migrated database in a directory the user may read but not write.
    std::fs::create_dir(l.ro_data()).unwrap();
    botmaker::sqlite::migrate(&l.ro_data().join("botmaker.db")).unwrap();
    for e in std::fs::read_dir(l.ro_data()).unwrap() {
        set_mode(&e.unwrap().path(), 0o644);
    }
    set_mode(&l.ro_data(), 0o555);
    std::fs::create_dir(l.ro_empty()).unwrap();
    set_mode(&l.ro_empty(), 0o555);
    // The user's secrets store with a secret they cannot read.
    let store = SecretsStore::open(&l.secrets()).unwrap();
    store.write(&bot(), &key(), b"unreadable").unwrap();
    drop(store);
    let secret = l.secrets().join(BOT).join("ai_api_key");
    if as_root {
        own(&l.secrets(), NOBODY);
        // The root's id file goes with the root: the user's store reads it at open.
        own(&l.secrets().join(".root-id"), NOBODY);
        own(&l.secrets().join(BOT), NOBODY);
        // The secret stays root's, 0600.
        std::fs::create_dir(l.foreign_root()).unwrap();
        set_mode(&l.foreign_root(), 0o755);
        own(&l.foreign_root(), OTHER);
    } else {
        set_mode(&secret, 0o000);
    }
    l
}

/// The assertions, run by the unprivileged user.
fn check(l: &Layout, with_foreign_root: bool) {
    // Read-only data directory: migrating cannot create the database, and the error
    // names the path.
    let config = Config::new(l.ro_empty(), l.secrets());
    let err = botmaker::migrate(&config).unwrap_err().to_string();
    println!("migrate in a read-only data dir: {err}");
    assert!(err.contains(l.ro_empty().to_str().unwrap()), "{err}");
    assert!(!l.ro_empty().join("botmaker.db").exists());

    // A database in a read-only directory: opening it (WAL needs its -shm and -wal
    // files) or writing to it fails with an error naming the database.
    let db = l.ro_data().join("botmaker.db");
    match SqliteStore::open(&db) {
        Err(e) => {
            let err = e.to_string();
            println!("open in a read-only data dir: {err}");
            assert!(err.contains(db.to_str().unwrap()), "{err}");
            assert!(err.contains("not writable"), "{err}");
        }
        Ok(store) => {
            use botmaker_domain::{BotRepository, NewBot};
            let new = NewBot::new(
                "x".parse().unwrap(),
                "openai".parse().unwrap(),
                "m".parse().unwrap(),
                "slack".parse().unwrap(),
            );
            let err = store.create(&new).unwrap_err();
            println!("write in a read-only data dir: {err}");
            let text = err.to_string();
            assert!(text.contains(db.to_str().unwrap()), "{text}");
            assert!(text.contains("not writable"), "{text}");
        }
    }
    let cfg = Config::new(l.ro_data(), l.secrets());
    let err = Botmaker::open(&cfg).map(drop).unwrap_err().to_string();
    assert!(err.contains(l.ro_data().to_str().unwrap()), "{err}");

    // An unreadable secret: a clear error naming the file, never its content.
    let store = SecretsStore::open(&l.secrets()).unwrap();
    let err = store.read(&bot(), &key()).unwrap_err();
    let text = err.to_string();
    println!("unreadable secret: {text}");
    assert!(
        matches!(
            err,
            SecretsError::Io { .. } | SecretsError::WrongOwner { .. }
        ),
        "{err:?}"
    );
    assert!(text.contains(&format!("{BOT}/ai_api_key")), "{text}");
    assert!(!text.contains("unreadable"), "{text}");

    if with_foreign_root {
        // A root owned by someone else: refused, with the fix named.
        let err = SecretsStore::open(&l.foreign_root()).unwrap_err();
        println!("foreign root: {err}");
        assert!(matches!(err, SecretsError::InsecureRoot { .. }), "{err:?}");
        assert!(
            err.to_string().contains(l.foreign_root().to_str().unwrap()),
            "{err}"
        );
    }
}

/// In the child (variable set): drop to `nobody`, then check. In a normal run: as root,
/// prepare and start that child; as anyone else, check what needs no second user.
#[test]
fn denials_are_clear_errors_for_an_unprivileged_user() {
    if let Ok(dir) = std::env::var(DIR_ENV) {
        setgroups(&[]).unwrap();
        setgid(Gid::from_raw(NOBODY)).unwrap();
        setuid(Uid::from_raw(NOBODY)).unwrap();
        assert_eq!(geteuid().as_raw(), NOBODY);
        check(
            &Layout {
                base: PathBuf::from(dir),
            },
            true,
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    if geteuid().is_root() {
        let l = prepare(tmp.path(), true);
        let out = crate::run_child(
            "permissions::denials_are_clear_errors_for_an_unprivileged_user",
            &[(DIR_ENV, l.base.to_str().unwrap())],
        );
        println!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("foreign root:"));
    } else {
        println!(
            "not root: cannot switch to another user; checking the read-only data dir and the unreadable secret only"
        );
        let l = prepare(tmp.path(), false);
        check(&l, false);
        set_mode(&l.ro_data(), 0o755);
        set_mode(&l.ro_empty(), 0o755);
    }
}
