//! Backup and restore (issue 13): round trip byte for byte with strict modes, every
//! kind of damage refused naming the file with the target left empty, refusals that
//! write nothing, schema versions, and backups taken while another thread creates,
//! rotates and deletes bots.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use botmaker::backup::{MANIFEST_FILE, REGISTRY_FILE};
use botmaker::domain::{BotId, SecretName};
use botmaker::{BackupError, Botmaker, Config, Error};
use botmaker_testkit::rng::Rng;

use crate::{Install, new_bot, required};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A fresh, empty installation (nothing created yet) beside `install`'s temp dir.
fn empty_target() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
    (dir, config)
}

/// Every file and folder under `dir`, relative, sorted (symlinks not followed).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            let is_dir = e.file_type().unwrap().is_dir();
            out.push(rel);
            if is_dir {
                walk(base, &e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The target installation holds nothing: no database, no bot folder, nothing in
/// the data folder.
#[track_caller]
fn assert_untouched(config: &Config) {
    assert!(
        !config.data_dir().exists() || tree(config.data_dir()).is_empty(),
        "data folder written: {:?}",
        tree(config.data_dir())
    );
    let secrets: Vec<String> = tree(config.secrets_dir())
        .into_iter()
        .filter(|e| e != ".lock")
        .collect();
    assert!(secrets.is_empty(), "secrets written: {secrets:?}");
}

/// All secrets of all bots: (bot, name) -> bytes.
fn all_secrets(bm: &Botmaker) -> BTreeMap<(BotId, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    for bot in bm.list_bots(None).unwrap() {
        for meta in bm.list_secrets(&bot).unwrap() {
            let value = bm.get_secret(&bot, &meta.name).unwrap();
            out.insert(
                (bot.id, meta.name.as_str().to_owned()),
                value.expose().to_vec(),
            );
        }
    }
    out
}

/// A value that must never appear outside the secret files.
const CANARY: &str = "canary-value-7f3a9c";

#[test]
fn round_trip_is_byte_for_byte_with_strict_modes_under_a_hostile_umask() {
    // Everything the backup and the restore create would be open to all without the
    // explicit modes.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let install = Install::new();
    let bm = install.open();
    let mut rng = Rng::new(13);
    let sizes = [0usize, 1, 7, 100, 4096, 64 * 1024];
    for (i, size) in sizes.iter().enumerate() {
        let bot = bm
            .create_bot(&new_bot(&format!("bot-{i}")), &required())
            .unwrap();
        let value: Vec<u8> = (0..*size).map(|_| rng.byte()).collect();
        let name: SecretName = format!("extra_{i}").parse().unwrap();
        bm.set_secret(&bot, &name, &value).unwrap();
    }
    let canary = bm.resolve(&"bot-0".parse().unwrap()).unwrap();
    bm.set_secret(&canary, &"canary".parse().unwrap(), CANARY.as_bytes())
        .unwrap();
    // A bot created with no secrets at all keeps no folder but stays registered.
    let bare = bm.create_bot(&new_bot("bare"), &[]).unwrap();
    let before = all_secrets(&bm);
    let bots_before = bm.list_bots(None).unwrap();

    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("snap");
    let mut calls = 0;
    let report = botmaker::backup(&install.config, &dir, |_| calls += 1).unwrap();
    assert_eq!(report.bots, sizes.len() + 1);
    assert_eq!(report.secrets, before.len());
    assert_eq!(report.left_out, 0);
    assert_eq!(calls, sizes.len() + 1, "one progress call per bot");
    assert_eq!(mode(&dir), 0o700);
    for rel in tree(&dir) {
        let path = dir.join(&rel);
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{rel}");
    }
    // Never a value in the manifest or a report.
    let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap();
    assert!(!manifest.contains(CANARY) && !format!("{report:?}").contains(CANARY));
    let verified = botmaker::verify_backup(&dir, |_| {}).unwrap();
    assert_eq!(verified.secrets, before.len());
    assert!(!format!("{verified:?}").contains(CANARY));
    assert!(!verified.needs_migration);

    let (_target_dir, target) = empty_target();
    let restored = botmaker::restore(&target, &dir, |_| {}).unwrap();
    assert!(restored.migrated.is_none());
    // Healthy but for what the original lacks too: the bare bot's secrets.
    let findings = |r: &botmaker::DoctorReport| -> Vec<(String, String)> {
        r.findings
            .iter()
            .map(|f| (f.kind.to_string(), f.subject.clone()))
            .collect()
    };
    let original = Botmaker::doctor(&install.config, false);
    assert_eq!(findings(&restored.doctor), findings(&original));
    assert_eq!(
        findings(&original),
        [("missing-secrets".to_owned(), format!("bare ({})", bare.id))]
    );
    let rb = Botmaker::open(&target).unwrap();
    // The same bots, now held by the restoring root: the restore forgot the backed-up
    // root and the target's adopted every bot (with a directory or without: `bare`
    // has its directory too).
    assert_ne!(rb.secrets_root(), install.open().secrets_root());
    let rehomed: Vec<_> = bots_before
        .iter()
        .map(|b| botmaker::domain::Bot {
            secrets_root: Some(rb.secrets_root()),
            ..b.clone()
        })
        .collect();
    assert_eq!(rb.list_bots(None).unwrap(), rehomed);
    assert_eq!(all_secrets(&rb), before);
    assert!(rb.resolve(&botmaker::BotRef::Id(bare.id)).is_ok());
    assert_eq!(mode(target.secrets_dir()), 0o700);
    for rel in tree(target.secrets_dir()) {
        let path = target.secrets_dir().join(&rel);
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{rel}");
    }
    assert_eq!(mode(&target.database_path()) & 0o077, 0);
    assert!(!target.data_dir().join(".botmaker.db.restore-tmp").exists());
}

/// A backup of a small installation, for the damage cases: (install, backup dir,
/// a bot id in it, the temp dir holding it).
fn small_backup() -> (Install, PathBuf, BotId, tempfile::TempDir) {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    bm.create_bot(&new_bot("beta"), &required()).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("snap");
    botmaker::backup(&install.config, &dir, |_| {}).unwrap();
    (install, dir, bot.id, backups)
}

#[test]
fn every_kind_of_damage_is_refused_naming_the_file_and_nothing_is_written() {
    type Damage = fn(&Path, &BotId) -> String;
    let cases: Vec<(&str, Damage)> = vec![
        ("flip a byte", |dir, bot| {
            let rel = format!("secrets/{bot}/ai_api_key");
            let path = dir.join(&rel);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[0] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
            rel
        }),
        ("truncate the registry", |dir, _| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join(REGISTRY_FILE))
                .unwrap();
            f.set_len(4096).unwrap();
            REGISTRY_FILE.to_owned()
        }),
        ("remove a secret", |dir, bot| {
            let rel = format!("secrets/{bot}/channel_token");
            std::fs::remove_file(dir.join(&rel)).unwrap();
            rel
        }),
        ("add a file", |dir, bot| {
            let rel = format!("secrets/{bot}/planted");
            std::fs::write(dir.join(&rel), b"x").unwrap();
            rel
        }),
        ("add a bot folder", |dir, _| {
            let rel = format!("secrets/{}", BotId::generate());
            std::fs::create_dir(dir.join(&rel)).unwrap();
            rel
        }),
        ("symlink in place of a secret", |dir, bot| {
            let rel = format!("secrets/{bot}/channel_config");
            let path = dir.join(&rel);
            let copy = dir.parent().unwrap().join("elsewhere");
            std::fs::copy(&path, &copy).unwrap();
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(&copy, &path).unwrap();
            rel
        }),
        ("symlink in place of a folder", |dir, bot| {
            let rel = format!("secrets/{bot}");
            let path = dir.join(&rel);
            let moved = dir.parent().unwrap().join("moved");
            std::fs::rename(&path, &moved).unwrap();
            std::os::unix::fs::symlink(&moved, &path).unwrap();
            rel
        }),
    ];
    for (what, damage) in cases {
        let (_install, dir, bot, _keep) = small_backup();
        let rel = damage(&dir, &bot);
        let err = botmaker::verify_backup(&dir, |_| {}).unwrap_err();
        match &err {
            Error::Backup(BackupError::Damaged { file, .. }) => assert_eq!(file, &rel, "{what}"),
            other => panic!("{what}: {other}"),
        }
        assert!(err.to_string().contains(&rel), "{what}: {err}");
        let (_t, target) = empty_target();
        let err = botmaker::restore(&target, &dir, |_| {}).unwrap_err();
        assert!(
            matches!(&err, Error::Backup(BackupError::Damaged { file, .. }) if file == &rel),
            "{what}: {err}"
        );
        assert_untouched(&target);
    }
}

#[test]
fn a_backup_without_a_manifest_is_incomplete_and_a_tampered_manifest_is_refused() {
    let (_install, dir, _bot, _keep) = small_backup();
    let manifest = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest).unwrap();

    std::fs::remove_file(&manifest).unwrap();
    let err = botmaker::verify_backup(&dir, |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Backup(BackupError::Incomplete { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("incomplete backup"), "{err}");
    let (_t, target) = empty_target();
    assert!(botmaker::restore(&target, &dir, |_| {}).is_err());
    assert_untouched(&target);

    // A path that would leave the folder, and a hash that is not one.
    for bad in [
        text.replacen("\"registry.db\"", "\"../registry.db\"", 1),
        text.replacen("\"sha256\": \"", "\"sha256\": \"zz", 1),
        "{}".to_owned(),
    ] {
        std::fs::write(&manifest, bad).unwrap();
        let err = botmaker::restore(&target, &dir, |_| {}).unwrap_err();
        assert!(
            matches!(err, Error::Backup(BackupError::InvalidManifest { .. })),
            "{err}"
        );
        assert_untouched(&target);
    }
}

#[test]
fn backup_refuses_a_folder_that_is_not_empty_and_writes_nothing() {
    let install = Install::new();
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("used");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), b"mine").unwrap();
    let err = botmaker::backup(&install.config, &dir, |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Backup(BackupError::NotEmpty { .. })),
        "{err}"
    );
    assert_eq!(tree(&dir), ["keep.txt"]);
    assert_eq!(std::fs::read(dir.join("keep.txt")).unwrap(), b"mine");
    // A file in place of the folder, and an empty folder (accepted, made 0700).
    let file = backups.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(botmaker::backup(&install.config, &file, |_| {}).is_err());
    let empty = backups.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    botmaker::backup(&install.config, &empty, |_| {}).unwrap();
    assert_eq!(mode(&empty), 0o700);
}

#[test]
fn restore_refuses_an_installation_that_is_not_empty_and_writes_nothing() {
    let (_install, dir, bot, _keep) = small_backup();
    // A database already there.
    let (_t, target) = empty_target();
    botmaker::migrate(&target).unwrap();
    let db_before = std::fs::read(target.database_path()).unwrap();
    let err = botmaker::restore(&target, &dir, |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Backup(BackupError::TargetNotEmpty { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("a database already exists"),
        "{err}"
    );
    assert_eq!(std::fs::read(target.database_path()).unwrap(), db_before);
    assert!(!target.secrets_dir().exists());

    // A bot folder already there (an interrupted restore, say).
    let (_t2, target) = empty_target();
    std::fs::create_dir_all(target.secrets_dir().join(bot.to_string())).unwrap();
    std::fs::set_permissions(target.secrets_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = botmaker::restore(&target, &dir, |_| {}).unwrap_err();
    assert!(err.to_string().contains("bot folder"), "{err}");
    assert!(!target.data_dir().exists());
    assert_eq!(tree(target.secrets_dir()), [bot.to_string()]);
}

/// Rewrites the manifest entry of the registry after the file changed.
fn rehash_registry(dir: &Path, schema_version: u32) {
    use sha2::Digest as _;
    let bytes = std::fs::read(dir.join(REGISTRY_FILE)).unwrap();
    let hash = sha2::Sha256::digest(&bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    let path = dir.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["schema_version"] = schema_version.into();
    let files = manifest["files"].as_array_mut().unwrap();
    let entry = files
        .iter_mut()
        .find(|f| f["path"] == REGISTRY_FILE)
        .unwrap();
    entry["size"] = (bytes.len() as u64).into();
    entry["sha256"] = hash.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn a_newer_schema_is_refused_and_an_older_one_is_migrated_after_restore() {
    // Newer: the registry's history claims a migration this code does not ship.
    let (_install, dir, _bot, _keep) = small_backup();
    let conn = rusqlite::Connection::open(dir.join(REGISTRY_FILE)).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
        [],
    )
    .unwrap();
    drop(conn);
    rehash_registry(&dir, 99);
    let err = botmaker::verify_backup(&dir, |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backup(BackupError::SchemaTooNew { backup: 99, .. })
        ),
        "{err}"
    );
    let (_t, target) = empty_target();
    assert!(botmaker::restore(&target, &dir, |_| {}).is_err());
    assert_untouched(&target);

    // Older: a registry at schema version 0 (no migration applied, no bots).
    let backups = tempfile::tempdir().unwrap();
    let old = backups.path().join("old");
    let empty = Install::new();
    botmaker::backup(&empty.config, &old, |_| {}).unwrap();
    std::fs::write(old.join(REGISTRY_FILE), b"").unwrap();
    rehash_registry(&old, 0);
    assert!(
        botmaker::verify_backup(&old, |_| {})
            .unwrap()
            .needs_migration
    );
    let (_t, target) = empty_target();
    let report = botmaker::restore(&target, &old, |_| {}).unwrap();
    let migrated = report.migrated.expect("migrated after restore");
    assert_eq!(migrated.to_version, botmaker::sqlite::LATEST_VERSION);
    assert!(report.doctor.is_healthy(), "{}", report.doctor);
    assert!(Botmaker::open(&target).is_ok());
}

/// Every value written to each (bot, secret), by the writer thread.
type Written = HashMap<(BotId, String), HashSet<Vec<u8>>>;

/// Backups taken in a loop while another thread creates, rotates and deletes bots:
/// each verifies, restores to a healthy installation, and each restored secret is a
/// value that some write set.
#[test]
fn online_backups_beside_creates_rotations_and_deletes_restore_healthy() {
    let install = Install::new();
    let written: Arc<Mutex<Written>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writer = {
        let (config, written, stop, ops) = (
            install.config.clone(),
            Arc::clone(&written),
            Arc::clone(&stop),
            Arc::clone(&ops),
        );
        std::thread::spawn(move || {
            let bm = Botmaker::open(&config).unwrap();
            let mut rng = Rng::new(Rng::seed_from_env("BACKUP_ONLINE_SEED"));
            let mut live = Vec::new();
            let mut n = 0u64;
            let record = |bot: BotId, name: &SecretName, value: &[u8]| {
                written
                    .lock()
                    .unwrap()
                    .entry((bot, name.as_str().to_owned()))
                    .or_default()
                    .insert(value.to_vec());
            };
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let value = format!("v{n}-").into_bytes().repeat(1 + rng.index(40));
                let action = match rng.below(10) {
                    // Kept small so that each round stays quick.
                    0..=3 if live.len() >= 40 => 9,
                    a => a,
                };
                match action {
                    0..=3 => {
                        let new = new_bot(&format!("b{n}"));
                        let secrets: Vec<(SecretName, &[u8])> = SecretName::required()
                            .into_iter()
                            .map(|s| (s, value.as_slice()))
                            .collect();
                        for (s, v) in &secrets {
                            record(new.id, s, v);
                        }
                        live.push(bm.create_bot(&new, &secrets).unwrap());
                    }
                    4..=6 if !live.is_empty() => {
                        let bot = &live[rng.index(live.len())];
                        let name = rng.pick(&SecretName::required()).clone();
                        record(bot.id, &name, &value);
                        bm.rotate_secret(bot, &name, &value).unwrap();
                    }
                    7..=9 if live.len() > 3 => {
                        let bot = live.swap_remove(rng.index(live.len()));
                        bm.delete_bot(&bot).unwrap();
                    }
                    _ => continue,
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let backups = tempfile::tempdir().unwrap();
    let mut left_out = 0;
    for round in 0..4 {
        // Let the writer get ahead between rounds.
        let at = ops.load(Ordering::Relaxed);
        while ops.load(Ordering::Relaxed) < at + 20 {
            assert!(
                !writer.is_finished(),
                "the writer thread stopped (see its panic)"
            );
            std::thread::yield_now();
        }
        let dir = backups.path().join(format!("round-{round}"));
        let report = botmaker::backup(&install.config, &dir, |_| {}).unwrap();
        left_out += report.left_out;
        botmaker::verify_backup(&dir, |_| {}).unwrap();
        let (_t, target) = empty_target();
        let restored = botmaker::restore(&target, &dir, |_| {}).unwrap();
        assert!(
            restored.doctor.is_healthy(),
            "round {round}: {}",
            restored.doctor
        );
        let rb = Botmaker::open(&target).unwrap();
        let values = all_secrets(&rb);
        assert_eq!(values.len(), report.secrets);
        let written = written.lock().unwrap();
        for ((bot, name), value) in values {
            assert!(
                written
                    .get(&(bot, name.clone()))
                    .is_some_and(|set| set.contains(&value)),
                "round {round}: {bot}/{name} holds a value no write set"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(ops.load(Ordering::Relaxed) > 100, "the writer hardly ran");
    // Informational: how often a delete raced a copy.
    let _ = left_out;
}

#[test]
fn a_secret_the_store_would_refuse_stops_the_backup_naming_it() {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    let path = install
        .config
        .secrets_dir()
        .join(bot.id.to_string())
        .join("channel_token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("snap");
    let err = botmaker::backup(&install.config, &dir, |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Secrets(botmaker::secrets::SecretsError::InsecureMode { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("channel_token"), "{err}");
    // What was written is no backup: it has no manifest.
    assert!(matches!(
        botmaker::verify_backup(&dir, |_| {}),
        Err(Error::Backup(BackupError::Incomplete { .. }))
    ));
}

/// A bot deleted after the registry copy, before its secrets are copied, is left out
/// of the snapshot: its row is removed from the copy, and no folder is there.
#[test]
fn a_bot_deleted_during_the_backup_is_left_out() {
    let install = Install::new();
    let bm = install.open();
    let mut bots: Vec<_> = (0..3)
        .map(|i| {
            bm.create_bot(&new_bot(&format!("b{i}")), &required())
                .unwrap()
        })
        .collect();
    bots.sort_by_key(|b| b.id); // the order the backup copies them in
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("snap");
    let victim = bots[1].clone();
    let report = botmaker::backup(&install.config, &dir, |p| {
        if p.done == 1 {
            bm.delete_bot(&victim).unwrap();
        }
    })
    .unwrap();
    assert_eq!((report.bots, report.left_out, report.secrets), (2, 1, 6));
    assert!(!dir.join("secrets").join(victim.id.to_string()).exists());
    let (_t, target) = empty_target();
    let restored = botmaker::restore(&target, &dir, |_| {}).unwrap();
    assert!(restored.doctor.is_healthy(), "{}", restored.doctor);
    let ids: Vec<BotId> = Botmaker::open(&target)
        .unwrap()
        .list_bots(None)
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&victim.id));
}
