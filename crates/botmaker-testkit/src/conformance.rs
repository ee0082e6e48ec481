//! The repository conformance suite: the checks every
//! [`BotRepository`] passes, whatever stores its bots (the in-memory model, SQLite, a
//! later PostgreSQL store).
//!
//! Each check is a public function of a store constructor, `make: impl Fn(Clock) -> S`:
//! it calls `make` once, with the [`Clock`] the check drives by hand, for an empty
//! store. `S` is anything that dereferences to a repository, so a constructor can
//! return the store together with what must outlive it (the temporary folder of its
//! database file), or simply `Box::new(store)`.
//!
//! A backend runs the suite with one test per check through
//! [`conformance_tests!`](crate::conformance_tests),
//! or in one test with [`run_all`]:
//!
//! ```
//! use botmaker_domain::MemoryRepository;
//!
//! botmaker_testkit::conformance::run_all(|clock| Box::new(MemoryRepository::with_clock(clock)));
//! ```
//!
//! The helpers the checks use to make bots and times ([`new_bot`], [`id`],
//! [`ManualClock`], …) are public too, for a backend's own tests.

// Every function here is a test: it panics, like `assert!`, when the store fails it.
#![allow(clippy::missing_panics_doc)]

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use botmaker_domain::{
    AiProvider, Bot, BotId, BotRepository, BotStatus, ChannelType, Clock, NewBot, PageCursor,
    RepoError, SecretsRootId, Timestamp,
};

/// 2026-11-27T00:00:00Z, a base for test clocks.
pub const T0: i64 = 1_795_737_600_000_000;

/// A clock the test sets by hand; [`ManualClock::clock`] is the [`Clock`] a store reads.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock at `micros` since the Unix epoch.
    pub fn new(micros: i64) -> Self {
        Self(Arc::new(AtomicI64::new(micros)))
    }

    /// Moves the clock to `micros`.
    pub fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }

    /// Moves the clock forward by `micros` and returns the new time.
    pub fn advance(&self, micros: i64) -> i64 {
        self.0.fetch_add(micros, Ordering::SeqCst) + micros
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        ts(self.0.load(Ordering::SeqCst))
    }

    /// A [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Clock::from_fn(move || ts(now.load(Ordering::SeqCst)))
    }
}

/// The timestamp `micros` since the Unix epoch.
pub fn ts(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros).unwrap()
}

/// A bot id that sorts by `n`.
pub fn id(n: u64) -> BotId {
    format!("00000000-0000-4000-8000-{n:012x}").parse().unwrap()
}

/// A new bot called `name`, with a random id.
pub fn new_bot(name: &str) -> NewBot {
    NewBot::new(
        name.parse().unwrap(),
        AiProvider::Anthropic,
        "claude-sonnet-4".parse().unwrap(),
        ChannelType::Slack,
    )
}

/// A new bot called `name` whose id is [`id(n)`](id).
pub fn new_bot_with_id(n: u64, name: &str) -> NewBot {
    NewBot::with_id(
        id(n),
        name.parse().unwrap(),
        AiProvider::OpenAi,
        "gpt-4o".parse().unwrap(),
        ChannelType::Discord,
    )
}

/// Runs every check, each on a store of its own.
pub fn run_all<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    // The same list as `conformance_tests!`.
    create_then_read(&make);
    every_provider_and_channel_round_trips(&make);
    missing_bots_are_not_found(&make);
    a_taken_name_is_refused(&make);
    a_taken_id_is_refused(&make);
    lists_are_newest_first_with_ties_broken_by_id_descending(&make);
    lists_filter_by_status(&make);
    walking_all_pages_gives_the_list(&make);
    a_cursor_need_not_be_a_stored_bot(&make);
    set_status_follows_the_lifecycle(&make);
    set_container_id_sets_and_clears(&make);
    delete_removes_and_frees_the_name(&make);
    failed_calls_change_nothing(&make);
    the_clock_is_read_once_per_write_call(&make);
    secrets_roots_round_trip_and_are_adopted_once(&make);
}

/// A secrets root id that sorts by `n`.
pub fn root(n: u64) -> SecretsRootId {
    format!("00000000-0000-4000-9000-{n:012x}").parse().unwrap()
}

/// One `#[test]` per check of this module, named after it, each calling the check
/// with the store constructor given (an expression, evaluated in each test):
///
/// ```
/// mod memory {
///     use botmaker_domain::MemoryRepository;
///
///     botmaker_testkit::conformance_tests!(|clock| Box::new(MemoryRepository::with_clock(clock)));
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        // The same list as `run_all`.
        $crate::conformance_tests!(@each $make;
            create_then_read,
            every_provider_and_channel_round_trips,
            missing_bots_are_not_found,
            a_taken_name_is_refused,
            a_taken_id_is_refused,
            lists_are_newest_first_with_ties_broken_by_id_descending,
            lists_filter_by_status,
            walking_all_pages_gives_the_list,
            a_cursor_need_not_be_a_stored_bot,
            set_status_follows_the_lifecycle,
            set_container_id_sets_and_clears,
            delete_removes_and_frees_the_name,
            failed_calls_change_nothing,
            the_clock_is_read_once_per_write_call,
            secrets_roots_round_trip_and_are_adopted_once,
        );
    };
    (@each $make:expr; $($check:ident,)+) => {$(
        #[test]
        fn $check() {
            $crate::conformance::$check($make);
        }
    )+};
}

fn setup<S>(make: impl Fn(Clock) -> S) -> (S, ManualClock) {
    let clock = ManualClock::new(T0);
    (make(clock.clock()), clock)
}

/// A created bot has the fields asked for, status `created`, both times at the clock's
/// reading, and reads back by id, by name and in lists.
pub fn create_then_read<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let new = new_bot("alpha");
    let bot = repo.create(&new).unwrap();
    assert_eq!(bot.id, new.id);
    assert_eq!(bot.name, new.name);
    assert_eq!(bot.ai_provider, new.ai_provider);
    assert_eq!(bot.model, new.model);
    assert_eq!(bot.channel_type, new.channel_type);
    assert_eq!(bot.status, BotStatus::Created);
    assert_eq!(bot.container_id, None);
    assert_eq!(bot.created_at, clock.now());
    assert_eq!(bot.updated_at, clock.now());
    assert_eq!(repo.get(&bot.id).unwrap(), bot);
    assert_eq!(repo.get_by_name(&bot.name).unwrap(), bot);
    assert_eq!(repo.list(None).unwrap(), vec![bot.clone()]);
    assert_eq!(repo.list(Some(BotStatus::Created)).unwrap(), vec![bot]);
    assert_eq!(repo.list(Some(BotStatus::Running)).unwrap(), vec![]);
}

/// Every provider and every channel type is stored and read back as itself.
pub fn every_provider_and_channel_round_trips<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, _clock) = setup(make);
    let repo = &*f;
    let mut n = 0;
    for &provider in AiProvider::ALL {
        for &channel in ChannelType::ALL {
            n += 1;
            let mut new = new_bot_with_id(n, &format!("bot-{n}"));
            new.ai_provider = provider;
            new.channel_type = channel;
            let bot = repo.create(&new).unwrap();
            assert_eq!(repo.get(&new.id).unwrap(), bot);
            assert_eq!((bot.ai_provider, bot.channel_type), (provider, channel));
        }
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, RepoError>, bot: &str) {
    match result {
        Err(RepoError::NotFound { bot: b }) => assert_eq!(b.to_string(), bot),
        other => panic!("expected NotFound {{ bot: {bot} }}, got {other:?}"),
    }
}

/// Every operation on a missing bot is `NotFound` naming the id or name asked for,
/// and changes nothing.
pub fn missing_bots_are_not_found<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, _clock) = setup(make);
    let repo = &*f;
    repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    let before = repo.list(None).unwrap();
    let ghost = id(99);
    let ghost_s = ghost.to_string();
    assert_not_found(repo.get(&ghost), &ghost_s);
    assert_not_found(repo.get_by_name(&"ghost".parse().unwrap()), "ghost");
    assert_not_found(repo.set_status(&ghost, BotStatus::Starting), &ghost_s);
    assert_not_found(repo.set_status(&ghost, BotStatus::Failed), &ghost_s);
    assert_not_found(
        repo.set_container_id(&ghost, Some(&"c1".parse().unwrap())),
        &ghost_s,
    );
    assert_not_found(repo.set_container_id(&ghost, None), &ghost_s);
    assert_not_found(repo.adopt_secrets_root(&ghost, &root(1)), &ghost_s);
    assert_not_found(repo.delete(&ghost), &ghost_s);
    assert_eq!(
        repo.list(None).unwrap(),
        before,
        "a failed call changes nothing"
    );
}

/// Creating a bot under a taken name is `NameTaken`, and stores nothing.
pub fn a_taken_name_is_refused<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let first = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    clock.advance(10);
    match repo.create(&new_bot_with_id(2, "alpha")) {
        Err(RepoError::NameTaken { name }) => assert_eq!(name.as_str(), "alpha"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert_not_found(repo.get(&id(2)), &id(2).to_string());
    assert_eq!(repo.list(None).unwrap(), vec![first]);
}

/// Creating a bot under a taken id is `IdTaken` (checked before the name, also when
/// another bot holds the name), and stores nothing.
pub fn a_taken_id_is_refused<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, _clock) = setup(make);
    let repo = &*f;
    let first = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    match repo.create(&new_bot_with_id(1, "beta")) {
        Err(RepoError::IdTaken { id: taken }) => assert_eq!(taken, id(1)),
        other => panic!("expected IdTaken, got {other:?}"),
    }
    // Both taken by the same bot: the id is checked first.
    assert!(matches!(
        repo.create(&new_bot_with_id(1, "alpha")),
        Err(RepoError::IdTaken { .. })
    ));
    assert_not_found(repo.get_by_name(&"beta".parse().unwrap()), "beta");
    assert_eq!(repo.list(None).unwrap(), vec![first.clone()]);
    // Both taken by two different bots: still the id, whatever order a server checks
    // its unique indexes in.
    let second = repo.create(&new_bot_with_id(2, "gamma")).unwrap();
    match repo.create(&new_bot_with_id(1, "gamma")) {
        Err(RepoError::IdTaken { id: taken }) => assert_eq!(taken, id(1)),
        other => panic!("expected IdTaken, got {other:?}"),
    }
    match repo.create(&new_bot_with_id(2, "alpha")) {
        Err(RepoError::IdTaken { id: taken }) => assert_eq!(taken, id(2)),
        other => panic!("expected IdTaken, got {other:?}"),
    }
    assert_eq!(repo.list(None).unwrap().len(), 2);
    assert_eq!(repo.get(&id(1)).unwrap(), first);
    assert_eq!(repo.get(&id(2)).unwrap(), second);
}

/// Eight bots, some created at the same instant; returns them in the expected listing
/// order (written out by hand, not computed by the code under test).
fn seed_with_ties(repo: &(impl BotRepository + ?Sized), clock: &ManualClock) -> Vec<Bot> {
    // (id, name, created_at offset)
    let plan = [
        (5, "e", 0),
        (2, "b", 0),
        (9, "i", 0),
        (1, "a", 1),
        (7, "g", 1),
        (3, "c", -5),
        (8, "h", 2),
        (4, "d", 0),
    ];
    let mut made = Vec::new();
    for (n, name, offset) in plan {
        clock.set(T0 + offset);
        made.push(repo.create(&new_bot_with_id(n, name)).unwrap());
    }
    let by_id = |n: u64| made.iter().find(|b| b.id == id(n)).unwrap().clone();
    // Newest first: +2: 8; +1: 7, 1; 0: 9, 5, 4, 2; -5: 3.
    [8, 7, 1, 9, 5, 4, 2, 3].into_iter().map(by_id).collect()
}

/// Lists are newest first by `created_at`, ties broken by id, descending.
pub fn lists_are_newest_first_with_ties_broken_by_id_descending<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let expected = seed_with_ties(repo, &clock);
    assert_eq!(repo.list(None).unwrap(), expected);
    assert_eq!(repo.list(Some(BotStatus::Created)).unwrap(), expected);
}

/// A list by status holds exactly the bots in that status, in the listing order (by
/// `created_at`, not `updated_at`).
pub fn lists_filter_by_status<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let all = seed_with_ties(repo, &clock);
    clock.set(T0 + 100);
    for n in [1, 4, 9] {
        repo.set_status(&id(n), BotStatus::Starting).unwrap();
    }
    repo.set_status(&id(3), BotStatus::Failed).unwrap();
    let ids = |status| -> Vec<_> {
        repo.list(Some(status))
            .unwrap()
            .into_iter()
            .map(|b| b.id)
            .collect()
    };
    assert_eq!(ids(BotStatus::Starting), vec![id(1), id(9), id(4)]);
    assert_eq!(ids(BotStatus::Failed), vec![id(3)]);
    assert_eq!(ids(BotStatus::Created), vec![id(8), id(7), id(5), id(2)]);
    assert_eq!(ids(BotStatus::Running), vec![]);
    // The order of the whole list is by created_at, not updated_at.
    let all_ids: Vec<_> = all.iter().map(|b| b.id).collect();
    let now: Vec<_> = repo.list(None).unwrap().into_iter().map(|b| b.id).collect();
    assert_eq!(now, all_ids);
}

fn walk(
    repo: &(impl BotRepository + ?Sized),
    status: Option<BotStatus>,
    limit: usize,
) -> (Vec<Bot>, usize) {
    let mut all = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = repo.list_page(status, after, limit).unwrap();
        assert!(page.len() <= limit);
        pages += 1;
        assert!(pages < 100, "paging does not end");
        match page.last() {
            Some(last) => after = Some(PageCursor::after(last)),
            None => break,
        }
        let short = page.len() < limit;
        all.extend(page);
        if short {
            break;
        }
    }
    (all, pages)
}

/// Walking every page, at every page size, gives the whole list, with and without a
/// status filter; a page of 0 is empty.
pub fn walking_all_pages_gives_the_list<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let expected = seed_with_ties(repo, &clock);
    repo.set_status(&id(9), BotStatus::Starting).unwrap();
    repo.set_status(&id(2), BotStatus::Starting).unwrap();
    for limit in 1..=10 {
        let (all, _pages) = walk(repo, None, limit);
        assert_eq!(all, repo.list(None).unwrap(), "limit {limit}");
        assert_eq!(
            all.iter().map(|b| b.id).collect::<Vec<_>>(),
            expected.iter().map(|b| b.id).collect::<Vec<_>>()
        );
        for &status in BotStatus::ALL {
            let (some, _) = walk(repo, Some(status), limit);
            assert_eq!(
                some,
                repo.list(Some(status)).unwrap(),
                "{status}, limit {limit}"
            );
        }
    }
    assert_eq!(repo.list_page(None, None, 0).unwrap(), vec![]);
    assert_eq!(
        repo.list_page(None, None, usize::MAX).unwrap(),
        repo.list(None).unwrap()
    );
}

/// A page continues after its cursor even when no stored bot matches it (deleted, or
/// between two instants).
pub fn a_cursor_need_not_be_a_stored_bot<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let expected = seed_with_ties(repo, &clock);
    // Continue after bot 5 after it was deleted: 4, 2, 3 remain after it.
    let cursor = PageCursor::after(&expected[4]);
    repo.delete(&id(5)).unwrap();
    let ids: Vec<_> = repo
        .list_page(None, Some(cursor), 10)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec![id(4), id(2), id(3)]);
    // A cursor between two instants.
    let cursor = PageCursor {
        created_at: ts(T0 + 1),
        id: id(0),
    };
    let ids: Vec<_> = repo
        .list_page(None, Some(cursor), 10)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec![id(9), id(4), id(2), id(3)]);
    // After the oldest: nothing.
    let cursor = PageCursor::after(expected.last().unwrap());
    assert_eq!(repo.list_page(None, Some(cursor), 10).unwrap(), vec![]);
}

/// The statuses a bot goes through to reach `status` from `created`.
fn path_to(status: BotStatus) -> Vec<BotStatus> {
    use BotStatus::{Created, Failed, Running, Starting, Stopped, Stopping};
    match status {
        Created => vec![],
        Starting => vec![Starting],
        Running => vec![Starting, Running],
        Stopping => vec![Starting, Running, Stopping],
        Stopped => vec![Starting, Running, Stopping, Stopped],
        Failed => vec![Failed],
        other => panic!("no path to {other}"),
    }
}

/// Every transition between every two statuses: the allowed ones change only the
/// status and `updated_at`, the others are `InvalidTransition` and change nothing.
pub fn set_status_follows_the_lifecycle<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    use BotStatus::{Created, Failed, Running, Starting, Stopped, Stopping};
    // Written out, not taken from `can_transition_to`.
    let allowed = [
        (Created, Starting),
        (Starting, Running),
        (Running, Stopping),
        (Stopping, Stopped),
        (Stopped, Starting),
        (Failed, Starting),
        (Created, Failed),
        (Starting, Failed),
        (Running, Failed),
        (Stopping, Failed),
        (Stopped, Failed),
        (Failed, Failed),
    ];
    let (f, clock) = setup(make);
    let repo = &*f;
    let mut n = 0;
    for &from in BotStatus::ALL {
        for &to in BotStatus::ALL {
            n += 1;
            clock.set(T0 + i64::try_from(n).unwrap() * 1000);
            let created = repo
                .create(&new_bot_with_id(n, &format!("bot-{n}")))
                .unwrap();
            let mut current = created.clone();
            for step in path_to(from) {
                clock.advance(1);
                current = repo.set_status(&created.id, step).unwrap();
            }
            assert_eq!(current.status, from);
            let at = clock.advance(1);
            let result = repo.set_status(&created.id, to);
            if allowed.contains(&(from, to)) {
                let bot = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(bot.status, to);
                assert_eq!(bot.updated_at, ts(at));
                assert_eq!(bot.created_at, created.created_at);
                assert_eq!(
                    Bot {
                        status: current.status,
                        updated_at: current.updated_at,
                        ..bot.clone()
                    },
                    current,
                    "only status and updated_at change"
                );
                assert_eq!(repo.get(&created.id).unwrap(), bot);
            } else {
                match result {
                    Err(RepoError::InvalidTransition {
                        id: i,
                        from: f,
                        to: t,
                    }) => {
                        assert_eq!((i, f, t), (created.id, from, to));
                    }
                    other => panic!("{from} -> {to}: expected InvalidTransition, got {other:?}"),
                }
                assert_eq!(
                    repo.get(&created.id).unwrap(),
                    current,
                    "refused: unchanged"
                );
            }
        }
    }
}

/// Setting and clearing the container id changes only it and `updated_at`.
pub fn set_container_id_sets_and_clears<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let bot = repo.create(&new_bot("alpha")).unwrap();
    let container = "botmaker-alpha_1".parse().unwrap();
    let at = clock.advance(5);
    let with = repo.set_container_id(&bot.id, Some(&container)).unwrap();
    assert_eq!(with.container_id.as_ref(), Some(&container));
    assert_eq!(with.updated_at, ts(at));
    assert_eq!(with.created_at, bot.created_at);
    assert_eq!(with.status, bot.status);
    assert_eq!(repo.get(&bot.id).unwrap(), with);
    let at = clock.advance(5);
    let without = repo.set_container_id(&bot.id, None).unwrap();
    assert_eq!(without.container_id, None);
    assert_eq!(without.updated_at, ts(at));
    assert_eq!(repo.get_by_name(&bot.name).unwrap(), without);
}

/// Deleting removes the bot, a second delete is `NotFound`, and its id and name can
/// be used again.
pub fn delete_removes_and_frees_the_name<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, _clock) = setup(make);
    let repo = &*f;
    let a = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    let b = repo.create(&new_bot_with_id(2, "beta")).unwrap();
    repo.delete(&a.id).unwrap();
    assert_not_found(repo.get(&a.id), &a.id.to_string());
    assert_not_found(repo.get_by_name(&a.name), "alpha");
    assert_eq!(repo.list(None).unwrap(), vec![b]);
    assert_not_found(repo.delete(&a.id), &a.id.to_string());
    // Name and id are free again.
    let again = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    assert_eq!(repo.get(&again.id).unwrap(), again);
}

/// Refused calls of every kind change nothing in the list.
pub fn failed_calls_change_nothing<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    seed_with_ties(repo, &clock);
    repo.set_status(&id(1), BotStatus::Starting).unwrap();
    let before = repo.list(None).unwrap();
    clock.advance(1_000_000);
    assert!(repo.create(&new_bot_with_id(1, "zzz")).is_err());
    assert!(repo.create(&new_bot_with_id(100, "a")).is_err());
    assert!(repo.set_status(&id(1), BotStatus::Stopped).is_err());
    assert!(repo.set_status(&id(2), BotStatus::Running).is_err());
    assert!(repo.set_status(&id(100), BotStatus::Failed).is_err());
    assert!(repo.set_container_id(&id(100), None).is_err());
    assert!(repo.adopt_secrets_root(&id(100), &root(1)).is_err());
    assert!(repo.delete(&id(100)).is_err());
    assert_eq!(repo.list(None).unwrap(), before);
}

/// The clock contract of [`BotRepository`]: every `create`, `set_status` and
/// `set_container_id` call reads the clock exactly once, whether it succeeds or fails;
/// reads, listings and deletes never read it.
pub fn the_clock_is_read_once_per_write_call<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let readings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&readings);
    let f = make(Clock::from_fn(move || {
        let k = counter.fetch_add(1, Ordering::SeqCst);
        ts(T0 + i64::try_from(k).unwrap())
    }));
    let repo = &*f;
    let read = || readings.load(Ordering::SeqCst);
    let mut expected = 0;
    let mut step = |what: &str, writes: usize| {
        expected += writes;
        assert_eq!(read(), expected, "clock readings after {what}");
    };
    let bot = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    assert_eq!(bot.created_at, ts(T0));
    step("a create", 1);
    repo.create(&new_bot_with_id(1, "beta")).unwrap_err();
    repo.create(&new_bot_with_id(2, "alpha")).unwrap_err();
    step("two refused creates", 2);
    let started = repo.set_status(&id(1), BotStatus::Starting).unwrap();
    assert_eq!(started.updated_at, ts(T0 + 3));
    step("a status change", 1);
    repo.set_status(&id(1), BotStatus::Stopped).unwrap_err();
    repo.set_status(&id(9), BotStatus::Failed).unwrap_err();
    step("two refused status changes", 2);
    let container = "c1".parse().unwrap();
    let set = repo.set_container_id(&id(1), Some(&container)).unwrap();
    assert_eq!(set.updated_at, ts(T0 + 6));
    repo.set_container_id(&id(9), None).unwrap_err();
    step("a container change and a refused one", 2);
    repo.get(&id(1)).unwrap();
    repo.get(&id(9)).unwrap_err();
    repo.get_by_name(&"alpha".parse().unwrap()).unwrap();
    repo.list(None).unwrap();
    repo.list_page(Some(BotStatus::Starting), None, 1).unwrap();
    repo.delete(&id(9)).unwrap_err();
    repo.delete(&id(1)).unwrap();
    step("reads, listings and deletes", 0);
}

/// A bot created with a secrets root reads back with it everywhere, one created
/// without has none; adopting records a root only where there is none, returns the
/// stored bot either way, and changes nothing else (not `updated_at`); status and
/// container changes keep the root.
pub fn secrets_roots_round_trip_and_are_adopted_once<S>(make: impl Fn(Clock) -> S)
where
    S: Deref<Target: BotRepository>,
{
    let (f, clock) = setup(make);
    let repo = &*f;
    let legacy = repo.create(&new_bot_with_id(1, "legacy")).unwrap();
    assert_eq!(legacy.secrets_root, None);
    clock.advance(1);
    let placed = repo
        .create(&new_bot_with_id(2, "placed").with_secrets_root(root(7)))
        .unwrap();
    assert_eq!(placed.secrets_root, Some(root(7)));
    assert_eq!(repo.get(&placed.id).unwrap(), placed);
    assert_eq!(repo.get_by_name(&placed.name).unwrap(), placed);
    assert_eq!(repo.get(&legacy.id).unwrap(), legacy);
    assert_eq!(
        repo.list(None).unwrap(),
        vec![placed.clone(), legacy.clone()]
    );
    assert_eq!(
        repo.list_page(None, None, 10).unwrap(),
        vec![placed.clone(), legacy.clone()]
    );

    // Adopting a bot without a root records it, and only it.
    clock.advance(1_000);
    let adopted = repo.adopt_secrets_root(&legacy.id, &root(3)).unwrap();
    assert_eq!(
        adopted,
        Bot {
            secrets_root: Some(root(3)),
            ..legacy.clone()
        },
        "only secrets_root changes (not updated_at)"
    );
    assert_eq!(repo.get(&legacy.id).unwrap(), adopted);
    // Adopting again, by the same root or another: nothing changes.
    assert_eq!(
        repo.adopt_secrets_root(&legacy.id, &root(3)).unwrap(),
        adopted
    );
    assert_eq!(
        repo.adopt_secrets_root(&legacy.id, &root(4)).unwrap(),
        adopted
    );
    assert_eq!(
        repo.adopt_secrets_root(&placed.id, &root(4)).unwrap(),
        placed,
        "a bot held by another root stays there"
    );
    assert_eq!(repo.get(&placed.id).unwrap(), placed);

    // Other changes keep the root.
    let started = repo.set_status(&placed.id, BotStatus::Starting).unwrap();
    assert_eq!(started.secrets_root, Some(root(7)));
    let with = repo
        .set_container_id(&adopted.id, Some(&"c1".parse().unwrap()))
        .unwrap();
    assert_eq!(with.secrets_root, Some(root(3)));
    assert_eq!(repo.get(&adopted.id).unwrap(), with);
}
