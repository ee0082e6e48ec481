//! The symlink-swap race: a thread exchanges a bot directory (and, in a second bot, a
//! secret file) with a symlink to an outside directory (`renameat2(RENAME_EXCHANGE)`)
//! while other threads write, read, list, remove and delete. The outside canary is
//! never read (its access time, set before its modification time so that any read
//! moves it, stays put), changed or removed, and nothing is created outside.

use std::fs::FileTimes;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use botmaker::domain::{BotId, SecretName};
use botmaker::secrets::{SecretsError, SecretsStore};
use nix::fcntl::{RenameFlags, renameat2};

use super::common::{Deadline, Tally, keep_if_failed};
use botmaker_testkit::scratch::Scratch;

const CANARY: &[u8] = b"CANARY-OUTSIDE-THE-STORE";
const WORKERS: usize = 2;

/// The outside directory and what it looked like.
struct Canary {
    dir: PathBuf,
    files: Vec<(PathBuf, u64, SystemTime, SystemTime)>,
    /// Whether reads move the access time on this filesystem (not `noatime`).
    atime_works: bool,
}

impl Canary {
    fn new(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir(&dir)?;
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut files = Vec::new();
        for n in ["ai_api_key", "channel_token"] {
            let p = dir.join(n);
            std::fs::write(&p, CANARY)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            std::fs::File::options()
                .write(true)
                .open(&p)?
                .set_times(FileTimes::new().set_accessed(old))?;
            let m = std::fs::metadata(&p)?;
            files.push((p, m.ino(), m.accessed()?, m.modified()?));
        }
        // The detector's control: the same set-up, read once.
        let control = dir.parent().context("canary parent")?.join("atime-control");
        std::fs::write(&control, CANARY)?;
        std::fs::File::options()
            .write(true)
            .open(&control)?
            .set_times(FileTimes::new().set_accessed(old))?;
        let _ = std::fs::read(&control)?;
        let atime_works = std::fs::metadata(&control)?.accessed()? != old;
        std::fs::remove_file(&control)?;
        Ok(Self {
            dir,
            files,
            atime_works,
        })
    }

    fn check(&self) -> Result<(), String> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| e.to_string())?
            .count();
        if entries != self.files.len() {
            return Err(format!(
                "the outside directory has {entries} entries, expected {}",
                self.files.len()
            ));
        }
        for (p, ino, atime, mtime) in &self.files {
            let m =
                std::fs::symlink_metadata(p).map_err(|e| format!("canary {}: {e}", p.display()))?;
            if !m.is_file() || m.ino() != *ino || m.nlink() != 1 || m.mode() & 0o7777 != 0o600 {
                return Err(format!(
                    "canary {} replaced or its mode changed",
                    p.display()
                ));
            }
            if m.modified().ok() != Some(*mtime) {
                return Err(format!("canary {} modified", p.display()));
            }
            if self.atime_works && m.accessed().ok() != Some(*atime) {
                return Err(format!("canary {} was read", p.display()));
            }
            if std::fs::read(p).map_err(|e| e.to_string())? != CANARY {
                return Err(format!("canary {} changed", p.display()));
            }
            // Reading it here moved its access time: put it back for the next check.
            std::fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_times(FileTimes::new().set_accessed(*atime)))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Runs until `deadline`; an iteration is one exchange attempt.
#[allow(clippy::too_many_lines)] // the race and its workers, read top to bottom
pub fn run(deadline: Deadline) -> Result<Tally> {
    let mut tally = Tally::new("symlink-swap");
    let mut scratch = Scratch::new("stress-symlink")?;
    let root = scratch.path().join("secrets");
    let canary = Canary::new(scratch.path().join("outside"))?;
    tally.add("atime-detector", u64::from(canary.atime_works));
    let store = Arc::new(SecretsStore::open(&root)?);
    let dir_bot = BotId::generate();
    let file_bot = BotId::generate();
    let key: SecretName = "ai_api_key".parse()?;
    let token: SecretName = "channel_token".parse()?;
    store.write(&dir_bot, &key, b"inside-0")?;
    store.write(&file_bot, &key, b"inside-file")?;
    let root_fd = std::fs::File::open(&root)?;
    let file_dir = std::fs::File::open(root.join(file_bot.to_string()))?;
    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ok_ops = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, done, failures, ok_ops, refused) = (
                Arc::clone(&store),
                Arc::clone(&done),
                Arc::clone(&failures),
                Arc::clone(&ok_ops),
                Arc::clone(&refused),
            );
            let (key, token) = (key.clone(), token.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                let inside = |v: &[u8]| v.starts_with(b"inside-") && v != CANARY;
                while !done.load(Ordering::Relaxed) {
                    i += 1;
                    let value = format!("inside-{w}-{i}");
                    let check_read = |r: Result<botmaker::secrets::SecretValue, SecretsError>| {
                        r.and_then(|v| {
                            if inside(v.expose()) {
                                Ok(())
                            } else {
                                Err(SecretsError::NotConfigured {
                                    what: "READ-OUTSIDE".to_owned(),
                                })
                            }
                        })
                    };
                    let results: Vec<Result<(), SecretsError>> = vec![
                        store.write(&dir_bot, &key, value.as_bytes()),
                        check_read(store.read(&dir_bot, &key)),
                        store.write(&dir_bot, &token, b"inside-token"),
                        check_read(store.read(&dir_bot, &token)),
                        store.list(&dir_bot).map(drop),
                        store.remove(&dir_bot, &token),
                        check_read(store.read(&file_bot, &key)),
                        store.list(&file_bot).map(drop),
                        if i.is_multiple_of(64) {
                            store.delete_bot(&dir_bot)
                        } else {
                            store.create_bot(&dir_bot).map(drop)
                        },
                    ];
                    for r in results {
                        match r {
                            Ok(()) => {
                                ok_ops.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(
                                SecretsError::Symlink { .. }
                                | SecretsError::Raced { .. }
                                | SecretsError::NotFound { .. }
                                | SecretsError::BotNotFound { .. },
                            ) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                if let Ok(mut f) = failures.lock() {
                                    f.push(format!("unexpected: {e}"));
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();

    // The racer, on this thread.
    let id = dir_bot.to_string();
    let (swap, id_path) = (root.join("swap"), root.join(&id));
    let file_link = root.join(file_bot.to_string()).join("swapfile");
    symlink(canary.files[0].0.clone(), &file_link)?;
    let mut iterations = 0u64;
    let mut exchanged = 0u64;
    let mut orphans = 0u64;
    while !deadline.over(iterations) {
        iterations += 1;
        if !is_link(&swap) && !is_link(&id_path) {
            // The directory was deleted and recreated under the link's name: move
            // the stray one aside and make a new link.
            if std::fs::symlink_metadata(&swap).is_ok() {
                orphans += 1;
                std::fs::rename(&swap, root.join(format!("orphan-{orphans}")))?;
            }
            symlink(&canary.dir, &swap)?;
        }
        if renameat2(
            root_fd.as_fd(),
            id.as_str(),
            root_fd.as_fd(),
            "swap",
            RenameFlags::RENAME_EXCHANGE,
        )
        .is_ok()
        {
            exchanged += 1;
        }
        if renameat2(
            file_dir.as_fd(),
            "ai_api_key",
            file_dir.as_fd(),
            "swapfile",
            RenameFlags::RENAME_EXCHANGE,
        )
        .is_ok()
        {
            exchanged += 1;
        }
        std::thread::yield_now();
    }
    done.store(true, Ordering::Relaxed);
    for w in workers {
        if w.join().is_err() {
            tally.fail("a worker thread panicked".to_owned());
        }
    }
    for f in failures.lock().map(|f| f.clone()).unwrap_or_default() {
        tally.fail(f);
    }
    tally.ops = ok_ops.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed);
    tally.checks = ok_ops.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed);
    tally.check(canary.check());
    tally.check(if exchanged > 0 {
        Ok(())
    } else {
        Err("the racer never swapped".to_owned())
    });
    tally.add("iterations", iterations);
    tally.add("exchanges", exchanged);
    tally.add("refused", refused.load(Ordering::Relaxed));
    keep_if_failed(&mut scratch, &mut tally);
    Ok(tally)
}
