//! Modes and owners, asserted with stat; hostile umasks in child processes; the
//! StrictModes check of the root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use botmaker_domain::BotId;
use botmaker_secrets::{Owner, SecretsError, SecretsOptions, SecretsStore};

use crate::common::{Fixture, euid, mode, name, run_child, uid};

fn chmod(path: &Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn fresh_store_has_0700_dirs_and_0600_files_owned_by_us() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("deep/er/secrets");
    let store = SecretsStore::open(&root).unwrap();
    assert_eq!(mode(&root), 0o700);
    assert_eq!(uid(&root), euid());
    let bot = BotId::generate();
    assert!(store.create_bot(&bot).unwrap());
    assert!(!store.create_bot(&bot).unwrap(), "create_bot is idempotent");
    store.write(&bot, &name("ai_api_key"), b"k").unwrap();
    let dir = root.join(bot.to_string());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(uid(&dir), euid());
    let file = dir.join("ai_api_key");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(uid(&file), euid());
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 1);
    let listed = store.list(&bot).unwrap();
    assert_eq!(listed[0].mode, 0o600);
}

#[test]
fn configured_owner_is_applied_with_fchown() {
    // CI runs as root, which may chown; as another user this is a no-op test.
    if euid() != 0 {
        return;
    }
    let owner = Owner {
        uid: 65534,
        gid: 65534,
    };
    let fx = Fixture::with(SecretsOptions {
        owner: Some(owner),
        ..SecretsOptions::default()
    });
    let bot = BotId::generate();
    fx.store.write(&bot, &name("ai_api_key"), b"k").unwrap();
    for p in [
        fx.root.clone(),
        fx.bot_dir(&bot),
        fx.secret_path(&bot, "ai_api_key"),
    ] {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
    }
    assert_eq!(mode(&fx.bot_dir(&bot)), 0o700);
    assert_eq!(mode(&fx.secret_path(&bot, "ai_api_key")), 0o600);
    assert_eq!(
        fx.store.read(&bot, &name("ai_api_key")).unwrap().expose(),
        b"k"
    );
    // The same store opened without the option expects files owned by us: refused.
    let err = SecretsStore::open(&fx.root).unwrap_err();
    assert!(matches!(err, SecretsError::InsecureRoot { .. }), "{err}");
    std::os::unix::fs::chown(&fx.root, Some(0), Some(0)).unwrap();
    // The root's id file, like the root, was handed to the owner: also refused, and
    // left as it is, until it is handed back.
    let id_file = fx.root.join(".root-id");
    assert_eq!(std::fs::symlink_metadata(&id_file).unwrap().uid(), 65534);
    let err = SecretsStore::open(&fx.root).unwrap_err();
    assert!(
        matches!(&err, SecretsError::WrongOwner { path, uid: 65534, expected: 0 } if *path == id_file),
        "{err}"
    );
    std::os::unix::fs::chown(&id_file, Some(0), Some(0)).unwrap();
    let plain = SecretsStore::open(&fx.root).unwrap();
    let err = plain.read(&bot, &name("ai_api_key")).unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::WrongOwner {
                uid: 65534,
                expected: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pre_existing_0644_file_is_refused_then_made_0600_by_the_next_write() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"old").unwrap();
    let path = fx.secret_path(&bot, "ai_api_key");
    chmod(&path, 0o644);
    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::InsecureMode {
                mode: 0o644,
                expected: 0o600,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0644"), "{err}");
    fx.store.write(&bot, &key, b"new").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"new");
}

#[test]
fn loose_bot_directory_is_tightened_by_a_write_and_refused_when_writable() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"v").unwrap();
    chmod(&fx.bot_dir(&bot), 0o777);
    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::InsecureMode {
                mode: 0o777,
                expected: 0o700,
                ..
            }
        ),
        "{err}"
    );
    fx.store.write(&bot, &key, b"w").unwrap();
    assert_eq!(mode(&fx.bot_dir(&bot)), 0o700);
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"w");
}

fn insecure_root(root: &Path) -> (String, String, String) {
    match SecretsStore::open(root) {
        Err(SecretsError::InsecureRoot { reason, fix, .. }) => {
            let msg = SecretsStore::open(root).unwrap_err().to_string();
            (reason, fix, msg)
        }
        other => panic!("expected InsecureRoot, got {other:?}"),
    }
}

#[test]
fn world_and_group_writable_roots_are_refused_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    std::fs::create_dir(&root).unwrap();
    chmod(&root, 0o777);
    let (reason, fix, msg) = insecure_root(&root);
    assert!(reason.contains("world-writable"), "{reason}");
    assert_eq!(fix, format!("chmod 700 {}", root.display()));
    assert!(msg.contains("chmod 700"), "{msg}");
    chmod(&root, 0o770);
    let (reason, _, _) = insecure_root(&root);
    assert!(reason.contains("group-writable"), "{reason}");
    assert_eq!(mode(&root), 0o770, "a refused root is not touched");
    // Readable by others is not writable: accepted (audit reports it).
    chmod(&root, 0o755);
    let store = SecretsStore::open(&root).unwrap();
    let report = store.audit().unwrap();
    assert_eq!(report.to_string(), ".: mode 0755, expected 0700");
}

#[test]
fn root_owned_by_another_user_is_refused() {
    if euid() != 0 {
        return; // only root can hand a directory to another user
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    std::fs::create_dir(&root).unwrap();
    chmod(&root, 0o700);
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    let (reason, fix, _) = insecure_root(&root);
    assert!(reason.contains("owned by uid 65534"), "{reason}");
    assert!(fix.starts_with("chown 0 "), "{fix}");
    // Unless that user is the configured owner.
    let opts = SecretsOptions {
        owner: Some(Owner {
            uid: 65534,
            gid: 65534,
        }),
        ..SecretsOptions::default()
    };
    SecretsStore::open_with(&root, opts).unwrap();
}

#[test]
fn symlinked_or_non_directory_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (reason, _, _) = insecure_root(&link);
    assert!(reason.contains("symlink"), "{reason}");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let (reason, _, _) = insecure_root(&file);
    assert!(reason.contains("not a directory"), "{reason}");
}

const UMASK_ENV: &str = "BOTMAKER_SECRETS_TEST_UMASK";
const ROOT_ENV: &str = "BOTMAKER_SECRETS_TEST_ROOT";

/// With the variables set: the child of the umask tests, which sets the umask of its
/// own process and writes. Without them (a normal run) it is the umask `0777` case
/// itself, run in a child like the others, so it never passes by doing nothing.
#[test]
fn umask_child_or_umask_0777_case() {
    let (Ok(umask), Ok(root)) = (std::env::var(UMASK_ENV), std::env::var(ROOT_ENV)) else {
        check_umask("0777");
        return;
    };
    let umask = u32::from_str_radix(&umask, 8).unwrap();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let store = SecretsStore::open(Path::new(&root)).unwrap();
    let bot: BotId = "0192f5a4-1b2c-7d3e-8f40-112233445566".parse().unwrap();
    store.write(&bot, &name("ai_api_key"), b"k").unwrap();
    store.write(&bot, &name("ai_api_key"), b"k2").unwrap();
    store
        .write_str(&bot, &name("channel_token"), "t\n")
        .unwrap();
    println!("umask child done under umask {umask:04o}");
}

/// Runs the child under `umask` (octal) in a process of its own and checks, with
/// stat, that the modes are exactly 0700/0600 anyway: the store sets them with
/// `fchmod`, never relying on the umask. As root (CI), permission bits do not stop
/// the child, so a umask that removes owner bits (0277, 0777) shows a missing
/// `fchmod` as a 0400 or 0000 file.
fn check_umask(umask: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let out = run_child(
        "modes::umask_child_or_umask_0777_case",
        &[(UMASK_ENV, umask), (ROOT_ENV, root.to_str().unwrap())],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("umask child done"),
        "the child did not run under umask {umask}"
    );
    let dir = root.join("0192f5a4-1b2c-7d3e-8f40-112233445566");
    assert_eq!(mode(&root), 0o700, "root under umask {umask}");
    assert_eq!(mode(&dir), 0o700, "bot dir under umask {umask}");
    for n in ["ai_api_key", "channel_token"] {
        assert_eq!(mode(&dir.join(n)), 0o600, "{n} under umask {umask}");
        assert_eq!(uid(&dir.join(n)), euid());
    }
    // The root's id file, made by the child's first open, is 0600 too.
    let id_file = root.join(".root-id");
    assert_eq!(mode(&id_file), 0o600, "id file under umask {umask}");
    assert_eq!(uid(&id_file), euid());
    let store = SecretsStore::open(&root).unwrap();
    assert_eq!(
        std::fs::read_to_string(&id_file).unwrap(),
        format!("{}\n", store.root_id())
    );
    let bot = "0192f5a4-1b2c-7d3e-8f40-112233445566".parse().unwrap();
    assert_eq!(
        store.read(&bot, &name("ai_api_key")).unwrap().expose(),
        b"k2"
    );
    assert_eq!(
        store.read(&bot, &name("channel_token")).unwrap().expose(),
        b"t"
    );
}

#[test]
fn hostile_umask_does_not_change_modes() {
    for umask in ["000", "077", "022", "027"] {
        check_umask(umask);
    }
}

/// A umask that takes the owner's write and execute bits (0277: files come out 0400
/// and directories 0500 without `fchmod`).
#[test]
fn umask_0277_does_not_change_modes() {
    check_umask("0277");
}

#[test]
fn operations_on_one_bot_never_touch_another() {
    let fx = Fixture::new();
    let (a, b) = (BotId::generate(), BotId::generate());
    for bot in [&a, &b] {
        for n in ["ai_api_key", "channel_token", "channel_config"] {
            fx.store
                .write(bot, &name(n), format!("{bot}-{n}").as_bytes())
                .unwrap();
        }
    }
    let snapshot = |bot: &BotId| -> Vec<(String, u64, i64, i64, u32)> {
        crate::common::entries(&fx.bot_dir(bot))
            .into_iter()
            .map(|n| {
                let m = std::fs::symlink_metadata(fx.secret_path(bot, &n)).unwrap();
                (n, m.ino(), m.mtime(), m.mtime_nsec(), m.mode())
            })
            .collect()
    };
    let before = snapshot(&b);
    let dir_ino = std::fs::metadata(fx.bot_dir(&b)).unwrap().ino();
    fx.store.write(&a, &name("ai_api_key"), b"rotated").unwrap();
    fx.store.remove(&a, &name("channel_token")).unwrap();
    assert!(fx.store.audit().unwrap().is_clean());
    fx.store.repair().unwrap();
    fx.store.delete_bot(&a).unwrap();
    assert_eq!(snapshot(&b), before);
    assert_eq!(std::fs::metadata(fx.bot_dir(&b)).unwrap().ino(), dir_ino);
    assert_eq!(fx.store.bots().unwrap(), [b]);
    for n in ["ai_api_key", "channel_token", "channel_config"] {
        assert_eq!(
            fx.store.read(&b, &name(n)).unwrap().expose(),
            format!("{b}-{n}").as_bytes()
        );
    }
}

#[test]
fn missing_parents_of_the_root_are_made_0700_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    // An existing parent with a mode of the operator's: left exactly as it is.
    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    chmod(&existing, 0o755);
    let made = [existing.join("a"), existing.join("a/b")];
    let root = existing.join("a/b/secrets");
    run_child(
        "modes::umask_child_or_umask_0777_case",
        &[(UMASK_ENV, "000"), (ROOT_ENV, root.to_str().unwrap())],
    );
    for p in &made {
        assert_eq!(
            mode(p),
            0o700,
            "missing parent {} under umask 000",
            p.display()
        );
        assert_eq!(uid(p), euid());
    }
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&existing), 0o755, "an existing parent is not changed");
}

const NOBODY: u32 = 65_534;
const NOBODY_ENV: &str = "BOTMAKER_SECRETS_TEST_NOBODY";
const BOT_A: &str = "0192f5a4-1b2c-7d3e-8f40-112233445566";
const BOT_B: &str = "0192f5a4-1b2c-7d3e-8f40-112233445577";
const BOT_C: &str = "0192f5a4-1b2c-7d3e-8f40-112233445588";

/// The child half of `umask_without_owner_read_works_for_an_unprivileged_user`: drops
/// to `nobody` (root ignores permission bits, so the bug only shows for another
/// user), sets the umask, and uses the store end to end. Without the variables (a
/// normal run) it is the umask `0777`, existing root case of that test, run in a
/// child like the others.
#[test]
fn nobody_umask_child_or_0777_existing_root_case() {
    let (Ok(umask), Ok(root), Ok(_)) = (
        std::env::var(UMASK_ENV),
        std::env::var(ROOT_ENV),
        std::env::var(NOBODY_ENV),
    ) else {
        check_nobody("0777", "existing root");
        return;
    };
    nix::unistd::setgroups(&[]).unwrap();
    nix::unistd::setgid(nix::unistd::Gid::from_raw(NOBODY)).unwrap();
    nix::unistd::setuid(nix::unistd::Uid::from_raw(NOBODY)).unwrap();
    assert_eq!(euid(), NOBODY);
    let umask = u32::from_str_radix(&umask, 8).unwrap();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let store = SecretsStore::open(Path::new(&root)).unwrap();
    let (a, b, c): (BotId, BotId, BotId) = (
        BOT_A.parse().unwrap(),
        BOT_B.parse().unwrap(),
        BOT_C.parse().unwrap(),
    );
    assert!(store.create_bot(&a).unwrap());
    store.write(&a, &name("ai_api_key"), b"k").unwrap();
    store.write(&a, &name("ai_api_key"), b"k2").unwrap();
    store.write_str(&a, &name("channel_token"), "t\n").unwrap();
    store.write(&a, &name("channel_config"), b"gone").unwrap();
    // Writing creates the bot's directory too.
    store.write(&b, &name("ai_api_key"), b"b").unwrap();
    store.write(&c, &name("ai_api_key"), b"c").unwrap();
    assert_eq!(store.read(&a, &name("ai_api_key")).unwrap().expose(), b"k2");
    assert_eq!(
        store.read(&a, &name("channel_token")).unwrap().expose(),
        b"t"
    );
    assert_eq!(store.read(&b, &name("ai_api_key")).unwrap().expose(), b"b");
    store.remove(&a, &name("channel_config")).unwrap();
    let listed = store.list(&a).unwrap();
    let names: Vec<_> = listed.iter().map(|m| m.name.as_str().to_owned()).collect();
    assert_eq!(names, ["ai_api_key", "channel_token"]);
    assert!(listed.iter().all(|m| m.mode == 0o600), "{listed:?}");
    assert_eq!(store.bots().unwrap(), [a, b, c]);
    store.delete_bot(&b).unwrap();
    store.quarantine_bot(&c).unwrap();
    assert_eq!(store.bots().unwrap(), [a]);
    // A fresh open of the same store (as a service restart does).
    let again = SecretsStore::open(Path::new(&root)).unwrap();
    assert_eq!(again.read(&a, &name("ai_api_key")).unwrap().expose(), b"k2");
    println!("nobody child done under umask {umask:04o}");
}

#[test]
fn umask_without_owner_read_works_for_an_unprivileged_user() {
    // 0277 leaves the owner r-x, 0477 -wx, 0777 nothing. Each layout makes a different
    // directory first: a missing parent, the root, a bot directory. (0777 with an
    // existing root is the normal run of the child helper.)
    for umask in ["0277", "0477", "0777"] {
        for layout in ["missing parent", "missing root", "existing root"] {
            if (umask, layout) != ("0777", "existing root") {
                check_nobody(umask, layout);
            }
        }
    }
}

/// One case of `umask_without_owner_read_works_for_an_unprivileged_user`.
fn check_nobody(umask: &str, layout: &str) {
    assert_eq!(
        euid(),
        0,
        "this test switches to nobody (uid 65534) in a child: run it as root"
    );
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(tmp.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let parent = if layout == "missing parent" {
        tmp.path().join("p")
    } else {
        tmp.path().to_owned()
    };
    let root = parent.join("secrets");
    if layout == "existing root" {
        std::fs::create_dir(&root).unwrap();
        chmod(&root, 0o700);
        std::os::unix::fs::chown(&root, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let out = run_child(
        "modes::nobody_umask_child_or_0777_existing_root_case",
        &[
            (UMASK_ENV, umask),
            (ROOT_ENV, root.to_str().unwrap()),
            (NOBODY_ENV, "1"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nobody child done"),
        "the child did not run its checks"
    );
    let a = root.join(BOT_A);
    let mut made = vec![root.clone(), a.clone(), root.join(".quarantine")];
    if layout == "missing parent" {
        made.push(parent.clone());
    }
    for d in &made {
        assert_eq!(mode(d), 0o700, "{} under umask {umask}", d.display());
        assert_eq!(uid(d), NOBODY, "{}", d.display());
    }
    for n in ["ai_api_key", "channel_token"] {
        assert_eq!(mode(&a.join(n)), 0o600, "{n} under umask {umask}");
        assert_eq!(uid(&a.join(n)), NOBODY);
    }
    // Nothing left behind: no temporary file, no trash, no orphan directory.
    assert_eq!(crate::common::entries(&a), ["ai_api_key", "channel_token"]);
    assert_eq!(
        crate::common::entries(&root),
        [".quarantine", ".root-id", BOT_A]
    );
    let q = crate::common::entries(&root.join(".quarantine"));
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].starts_with(BOT_C), "{q:?}");
    let qdir = root.join(".quarantine").join(&q[0]);
    assert_eq!(mode(&qdir), 0o700);
    assert_eq!(mode(&qdir.join("ai_api_key")), 0o600);
}

const NO_PROC_ENV: &str = "BOTMAKER_SECRETS_TEST_NO_PROC";

/// The child half of `without_proc_a_store_works_or_leaves_nothing`: runs with `/proc`
/// unmounted in its own mount namespace, as `nobody`, under the umask given. Without
/// the variables (a normal run) it is the umask `0277`, missing parent case of that
/// test, run in a child like the others.
#[test]
fn no_proc_child_or_0277_missing_parent_case() {
    let (Ok(umask), Ok(root), Ok(_)) = (
        std::env::var(UMASK_ENV),
        std::env::var(ROOT_ENV),
        std::env::var(NO_PROC_ENV),
    ) else {
        check_no_proc("0277", "missing parent");
        return;
    };
    assert!(
        !Path::new("/proc/self/fd").exists(),
        "/proc is still mounted"
    );
    nix::unistd::setgroups(&[]).unwrap();
    nix::unistd::setgid(nix::unistd::Gid::from_raw(NOBODY)).unwrap();
    nix::unistd::setuid(nix::unistd::Uid::from_raw(NOBODY)).unwrap();
    let umask = u32::from_str_radix(&umask, 8).unwrap();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let opened = SecretsStore::open(Path::new(&root));
    let bot: BotId = BOT_A.parse().unwrap();
    if umask & 0o400 != 0 {
        // Nothing can make a `0000` directory readable without /proc: refused, by the
        // open (it makes the root) or by the first write (it makes the bot directory).
        let err = match opened {
            Err(e) => e,
            Ok(store) => store.write(&bot, &name("ai_api_key"), b"k").unwrap_err(),
        };
        println!("no /proc, umask {umask:04o}: {err}");
        return;
    }
    let store = opened.unwrap();
    store.write(&bot, &name("ai_api_key"), b"k").unwrap();
    // Read opens the judged file by its name again (no /proc/self/fd to reopen it).
    assert_eq!(
        store.read(&bot, &name("ai_api_key")).unwrap().expose(),
        b"k"
    );
    println!("no /proc, umask {umask:04o}: works");
}

#[test]
fn without_proc_a_store_works_or_leaves_nothing() {
    // (0277 with a missing parent is the normal run of the child helper.)
    for (umask, layout) in [
        ("0777", "missing parent"),
        ("0777", "missing root"),
        ("0777", "existing root"),
    ] {
        check_no_proc(umask, layout);
    }
}

/// One case of `without_proc_a_store_works_or_leaves_nothing`.
fn check_no_proc(umask: &str, layout: &str) {
    assert_eq!(
        euid(),
        0,
        "this test unmounts /proc in a child: run it as root"
    );
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(tmp.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let root = if layout == "missing parent" {
        tmp.path().join("p/secrets")
    } else {
        tmp.path().join("secrets")
    };
    if layout == "existing root" {
        std::fs::create_dir(&root).unwrap();
        chmod(&root, 0o700);
        std::os::unix::fs::chown(&root, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    // util-linux `unshare` (needs CAP_SYS_ADMIN, which root in CI has).
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"umount -l /proc && exec "$0" --exact modes::no_proc_child_or_0277_missing_parent_case --nocapture --test-threads=1"#)
        .arg(&exe)
        .env(UMASK_ENV, umask)
        .env(ROOT_ENV, &root)
        .env(NO_PROC_ENV, "1")
        .output()
        .expect("unshare (util-linux) is needed: apt-get install util-linux");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("no /proc, umask"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if umask == "0777" {
        assert!(stdout.contains("no /proc, umask 0777: "), "{stdout}");
        // The bot directory or the root (with its parent) that could not be made
        // usable is gone.
        let dir = if layout == "existing root" {
            root.as_path()
        } else {
            tmp.path()
        };
        let left = crate::common::entries(dir);
        if layout == "existing root" {
            // The existing root opened (its id file made 0600 with fchmod, whatever
            // the umask); only the bot directory could not be made usable.
            assert_eq!(
                left,
                [".root-id"],
                "a refused {layout} left {left:?} behind"
            );
            assert_eq!(mode(&root.join(".root-id")), 0o600);
        } else {
            assert!(left.is_empty(), "a refused {layout} left {left:?} behind");
        }
    } else {
        assert!(stdout.contains("works"), "{stdout}");
        assert_eq!(mode(&root.join(BOT_A).join("ai_api_key")), 0o600);
    }
}
