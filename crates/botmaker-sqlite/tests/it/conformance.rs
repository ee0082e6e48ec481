//! The one conformance suite every `BotRepository` passes. Each check is a function of
//! a factory (`Clock -> Fixture`); the macro at the bottom runs all of them against the
//! in-memory repository and the SQLite store.

use botmaker_domain::{Bot, BotRepository, BotStatus, Clock, PageCursor, RepoError};

use crate::support::{Fixture, ManualClock, T0, id, new_bot, new_bot_with_id, ts};

type Make = fn(Clock) -> Fixture;

fn setup(make: Make) -> (Fixture, ManualClock) {
    let clock = ManualClock::new(T0);
    (make(clock.clock()), clock)
}

pub fn create_then_read(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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

pub fn every_provider_and_channel_round_trips(make: Make) {
    let (f, _clock) = setup(make);
    let repo = &*f.repo;
    let mut n = 0;
    for &provider in botmaker_domain::AiProvider::ALL {
        for &channel in botmaker_domain::ChannelType::ALL {
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

pub fn missing_bots_are_not_found(make: Make) {
    let (f, _clock) = setup(make);
    let repo = &*f.repo;
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
    assert_not_found(repo.delete(&ghost), &ghost_s);
    assert_eq!(
        repo.list(None).unwrap(),
        before,
        "a failed call changes nothing"
    );
}

pub fn a_taken_name_is_refused(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
    let first = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    clock.advance(10);
    match repo.create(&new_bot_with_id(2, "alpha")) {
        Err(RepoError::NameTaken { name }) => assert_eq!(name.as_str(), "alpha"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert_not_found(repo.get(&id(2)), &id(2).to_string());
    assert_eq!(repo.list(None).unwrap(), vec![first]);
}

pub fn a_taken_id_is_refused(make: Make) {
    let (f, _clock) = setup(make);
    let repo = &*f.repo;
    let first = repo.create(&new_bot_with_id(1, "alpha")).unwrap();
    match repo.create(&new_bot_with_id(1, "beta")) {
        Err(RepoError::IdTaken { id: taken }) => assert_eq!(taken, id(1)),
        other => panic!("expected IdTaken, got {other:?}"),
    }
    // Both taken: the id is checked first.
    assert!(matches!(
        repo.create(&new_bot_with_id(1, "alpha")),
        Err(RepoError::IdTaken { .. })
    ));
    assert_not_found(repo.get_by_name(&"beta".parse().unwrap()), "beta");
    assert_eq!(repo.list(None).unwrap(), vec![first]);
}

/// Eight bots, some created at the same instant; returns them in the expected listing
/// order (written out by hand, not computed by the code under test).
fn seed_with_ties(repo: &dyn BotRepository, clock: &ManualClock) -> Vec<Bot> {
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

pub fn lists_are_newest_first_with_ties_broken_by_id_descending(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
    let expected = seed_with_ties(repo, &clock);
    assert_eq!(repo.list(None).unwrap(), expected);
    assert_eq!(repo.list(Some(BotStatus::Created)).unwrap(), expected);
}

pub fn lists_filter_by_status(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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

fn walk(repo: &dyn BotRepository, status: Option<BotStatus>, limit: usize) -> (Vec<Bot>, usize) {
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

pub fn walking_all_pages_gives_the_list(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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

pub fn a_cursor_need_not_be_a_stored_bot(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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

pub fn set_status_follows_the_lifecycle(make: Make) {
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
    let repo = &*f.repo;
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

pub fn set_container_id_sets_and_clears(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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

pub fn delete_removes_and_frees_the_name(make: Make) {
    let (f, _clock) = setup(make);
    let repo = &*f.repo;
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

pub fn failed_calls_change_nothing(make: Make) {
    let (f, clock) = setup(make);
    let repo = &*f.repo;
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
    assert!(repo.delete(&id(100)).is_err());
    assert_eq!(repo.list(None).unwrap(), before);
}

macro_rules! conformance {
    ($($backend:ident => $make:path;)+) => {$(
        mod $backend {
            use super::*;
            const MAKE: Make = $make;
            conformance!(@tests
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
            );
        }
    )+};
    (@tests $($check:ident,)+) => {$(
        #[test]
        fn $check() {
            super::$check(MAKE);
        }
    )+};
}

conformance! {
    memory => crate::support::memory;
    sqlite => crate::support::sqlite;
}
