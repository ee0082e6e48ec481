//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use botmaker_domain::{
    AiProvider, BotId, BotRepository, ChannelType, Clock, MemoryRepository, NewBot, Timestamp,
};
use botmaker_sqlite::{SqliteStore, StoreOptions, migrate};

/// 2026-11-27T00:00:00Z, a base for test clocks.
pub const T0: i64 = 1_795_737_600_000_000;

/// A clock the test sets by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(micros: i64) -> Self {
        Self(Arc::new(AtomicI64::new(micros)))
    }

    pub fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }

    pub fn advance(&self, micros: i64) -> i64 {
        self.0.fetch_add(micros, Ordering::SeqCst) + micros
    }

    pub fn now(&self) -> Timestamp {
        ts(self.0.load(Ordering::SeqCst))
    }

    pub fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Clock::from_fn(move || ts(now.load(Ordering::SeqCst)))
    }
}

pub fn ts(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros).unwrap()
}

/// A bot id that sorts by `n`.
pub fn id(n: u64) -> BotId {
    format!("00000000-0000-4000-8000-{n:012x}").parse().unwrap()
}

pub fn new_bot(name: &str) -> NewBot {
    NewBot::new(
        name.parse().unwrap(),
        AiProvider::Anthropic,
        "claude-sonnet-4".parse().unwrap(),
        ChannelType::Slack,
    )
}

pub fn new_bot_with_id(n: u64, name: &str) -> NewBot {
    NewBot::with_id(
        id(n),
        name.parse().unwrap(),
        AiProvider::OpenAi,
        "gpt-4o".parse().unwrap(),
        ChannelType::Discord,
    )
}

/// A migrated database in a fresh temporary folder.
pub fn migrated_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    (dir, path)
}

pub fn open_store(path: &Path, clock: Clock) -> SqliteStore {
    SqliteStore::open_with(
        path,
        StoreOptions {
            clock,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// A repository under test, with whatever must live as long as it.
pub struct Fixture {
    pub repo: Box<dyn BotRepository>,
    _dir: Option<tempfile::TempDir>,
}

pub fn memory(clock: Clock) -> Fixture {
    Fixture {
        repo: Box::new(MemoryRepository::with_clock(clock)),
        _dir: None,
    }
}

pub fn sqlite(clock: Clock) -> Fixture {
    let (dir, path) = migrated_db();
    Fixture {
        repo: Box::new(open_store(&path, clock)),
        _dir: Some(dir),
    }
}

/// Reads a file whole (to compare before and after).
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The names in a folder, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
