//! The port every bot store implements: [`BotRepository`], its error
//! [`RepoError`], and the [`Clock`] stores take their timestamps from.
//!
//! The SQLite store (`botmaker-sqlite`) and the in-memory [`MemoryRepository`]
//! implement it and pass one shared conformance suite, so a PostgreSQL store can be
//! added later without changing callers. The trait lives here, in the crate without
//! I/O, so that such a store does not have to compile SQLite to implement it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::{
    Bot, BotId, BotName, BotRef, BotStatus, ContainerId, NewBot, SecretsRootId, Timestamp,
};

mod memory;
pub use memory::MemoryRepository;

/// Why a repository operation failed. Opening a store has its own errors in the
/// store's crate; these are the ones every operation of every store can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// No bot with this id or name.
    #[error("bot {bot} not found")]
    NotFound {
        /// The id or name that was looked up.
        bot: BotRef,
    },
    /// Another bot already has this name.
    #[error("bot name \"{name}\" is already taken")]
    NameTaken {
        /// The name.
        name: BotName,
    },
    /// Another bot already has this id.
    #[error("bot id {id} is already taken")]
    IdTaken {
        /// The id.
        id: BotId,
    },
    /// The lifecycle does not allow this status change (see [`BotStatus`]).
    #[error("bot {id}: invalid status transition from {from} to {to}")]
    InvalidTransition {
        /// The bot.
        id: BotId,
        /// Its current status.
        from: BotStatus,
        /// The requested status.
        to: BotStatus,
    },
    /// The store stayed locked by other writers for longer than its busy timeout.
    /// Retryable: nothing was changed.
    #[error("store busy: {operation} waited {waited_ms} ms for other writers; retry later")]
    Busy {
        /// What was attempted.
        operation: &'static str,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The store could not be reached: its server is down, restarting, or dropped the
    /// connection (a networked store such as PostgreSQL). Retryable: the operation was
    /// not applied, or (when the connection dropped during a commit) may have been; a
    /// retry after the server is back finds out.
    #[error("store unavailable during {operation}: {detail}; retry later")]
    Unavailable {
        /// What was attempted.
        operation: &'static str,
        /// Where and why (names the server and database, never a password).
        detail: String,
    },
    /// The stored data is damaged or not what this code wrote. Not retryable; the
    /// store is never deleted or rewritten to "recover".
    #[error("store corrupt: {detail}")]
    Corrupt {
        /// What was found.
        detail: String,
    },
    /// Any other failure of the backing store (I/O error, full disk, …).
    #[error("store failed during {operation}: {source}")]
    Backend {
        /// What was attempted.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl RepoError {
    /// Whether retrying the same call, unchanged, can succeed: only [`RepoError::Busy`]
    /// (other writers held the store; nothing was changed) and
    /// [`RepoError::Unavailable`] (the store's server could not be reached). Every
    /// other error says something about the data or the store that a retry does not
    /// change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Busy { .. } | Self::Unavailable { .. })
    }
}

/// Where a listing starts: the `(created_at, id)` of the last bot of the previous page.
/// Listings are ordered newest first, ties broken by id (descending), so the order is
/// total and a cursor never skips or repeats a bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// `created_at` of the last bot returned.
    pub created_at: Timestamp,
    /// `id` of the last bot returned.
    pub id: BotId,
}

impl PageCursor {
    /// The cursor that continues after `bot`.
    pub fn after(bot: &Bot) -> Self {
        Self {
            created_at: bot.created_at,
            id: bot.id,
        }
    }
}

/// A source of timestamps for `created_at`/`updated_at`. [`Clock::system`] reads the
/// system clock; tests inject a fixed or stepping clock to make results comparable.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock (UTC, microseconds).
    pub fn system() -> Self {
        Self(Arc::new(|| Timestamp::from_system_time(SystemTime::now())))
    }

    /// A clock that calls `f`.
    pub fn from_fn(f: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The current time by this clock.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// The bot registry. Every method is one atomic operation; implementations are
/// `Send + Sync` and safe to share between threads.
///
/// **The clock.** Every call of [`create`](BotRepository::create),
/// [`set_status`](BotRepository::set_status) and
/// [`set_container_id`](BotRepository::set_container_id) reads the store's [`Clock`]
/// exactly once, before it touches the store, whether it then succeeds or fails; the
/// other methods never read it. A networked store can then write and check in one
/// round trip (the server says whether the write was allowed), and two stores given
/// equal stepping clocks and the same calls stay comparable: the model test relies on
/// it. A call that fails changes nothing in the store all the same; only the clock has
/// moved.
pub trait BotRepository: Send + Sync {
    /// Registers a bot with status `created`, no container, and `created_at` =
    /// `updated_at` = now. Fails with [`RepoError::NameTaken`] or
    /// [`RepoError::IdTaken`] and then changes nothing.
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError>;

    /// The bot with this id, or [`RepoError::NotFound`].
    fn get(&self, id: &BotId) -> Result<Bot, RepoError>;

    /// The bot with this name, or [`RepoError::NotFound`].
    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError>;

    /// All bots (or those with `status`), newest first, ties broken by id descending.
    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError>;

    /// At most `limit` bots (or those with `status`) that come after `after` in the
    /// order of [`BotRepository::list`]; from the start when `after` is `None`. Walks
    /// any number of bots in bounded memory.
    fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>, RepoError>;

    /// Changes the status if the lifecycle allows it
    /// ([`RepoError::InvalidTransition`] otherwise) and refreshes `updated_at`.
    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError>;

    /// Sets or clears the container id and refreshes `updated_at`.
    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError>;

    /// Records that `root` holds the bot's secrets, **only if no root is recorded yet**
    /// (a bot registered before schema V3), and returns the bot as stored afterwards:
    /// with `root` when it was adopted now or before, with the other root when another
    /// root holds it already (then nothing changed). [`RepoError::NotFound`] when there
    /// is no such bot.
    ///
    /// It does not refresh `updated_at` and does not read the clock: where a bot's
    /// secrets are kept is bookkeeping about the installation, not a change of the bot,
    /// and `migrate` adopting every bot of an upgraded installation must not make them
    /// all look changed.
    fn adopt_secrets_root(&self, id: &BotId, root: &SecretsRootId) -> Result<Bot, RepoError>;

    /// Removes the bot, or [`RepoError::NotFound`].
    fn delete(&self, id: &BotId) -> Result<(), RepoError>;
}
