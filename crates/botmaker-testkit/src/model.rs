//! The model-based property test: random sequences of operations, valid and invalid,
//! give the same results on a store as on the in-memory [`MemoryRepository`], the
//! model. Any [`BotRepository`] runs it through [`model_proptest`] by passing its
//! constructor.

// Every function here is a test: it panics, like `assert!`, when the store fails it.
#![allow(clippy::missing_panics_doc)]

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use botmaker_domain::{
    AiProvider, BotRepository, BotStatus, ChannelType, Clock, ContainerId, MemoryRepository,
    NewBot, PageCursor, RepoError, SecretsRootId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner, contextualize_config};

use crate::conformance::{T0, id, root, ts};

const IDS: u64 = 6;
const NAMES: [&str; 5] = ["alpha", "beta", "gamma", "delta", "x"];
const CONTAINERS: [&str; 3] = ["c1", "botmaker-alpha_1", "0123456789abcdef"];
/// How many secrets roots ([`root`]) the operations choose from.
const ROOTS: u64 = 3;

/// One step of a run; `u64`s are bot ids ([`id`]), `usize`s index the lists above.
#[derive(Clone, Debug)]
enum Op {
    Create {
        id: u64,
        name: usize,
        provider: usize,
        channel: usize,
        /// The secrets root it is placed in; `None`: a bot from before placements.
        root: Option<u64>,
    },
    Get(u64),
    GetByName(usize),
    List(Option<usize>),
    Walk {
        status: Option<usize>,
        limit: usize,
    },
    PageAfter {
        status: Option<usize>,
        at: i64,
        id: u64,
        limit: usize,
    },
    SetStatus(u64, usize),
    SetContainer(u64, Option<usize>),
    Delete(u64),
    AdoptSecretsRoot(u64, u64),
    /// Close the store and open its data again (a no-op for the model).
    Reopen,
}

fn status_index() -> impl Strategy<Value = usize> {
    0..BotStatus::ALL.len()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0..IDS,
            0..NAMES.len(),
            0..AiProvider::ALL.len(),
            0..ChannelType::ALL.len(),
            proptest::option::of(0..ROOTS),
        )
            .prop_map(|(id, name, provider, channel, root)| Op::Create {
                id,
                name,
                provider,
                channel,
                root,
            }),
        1 => (0..IDS).prop_map(Op::Get),
        1 => (0..NAMES.len()).prop_map(Op::GetByName),
        1 => proptest::option::of(status_index()).prop_map(Op::List),
        1 => (proptest::option::of(status_index()), 1..4usize)
            .prop_map(|(status, limit)| Op::Walk { status, limit }),
        1 => (proptest::option::of(status_index()), 0..6i64, 0..IDS, 0..4usize)
            .prop_map(|(status, at, id, limit)| Op::PageAfter { status, at, id, limit }),
        4 => (0..IDS, status_index()).prop_map(|(id, s)| Op::SetStatus(id, s)),
        1 => (0..IDS, proptest::option::of(0..CONTAINERS.len()))
            .prop_map(|(id, c)| Op::SetContainer(id, c)),
        1 => (0..IDS).prop_map(Op::Delete),
        1 => (0..IDS, 0..ROOTS).prop_map(|(id, r)| Op::AdoptSecretsRoot(id, r)),
        1 => Just(Op::Reopen),
    ]
}

/// A clock that returns `T0 + times[k]` on its k-th reading (then keeps counting),
/// where `steps` of 0 make ties. Each store gets its own, from the same steps: every
/// store reads its clock exactly once per `create`, `set_status` and
/// `set_container_id` call, before it touches its data, whether the call succeeds or
/// fails (the contract of `BotRepository`), so equal runs see equal times. A store
/// that read it only on success, or twice on a retry, drifts from the model and the
/// test shows the first timestamp that differs.
fn scripted_clock(steps: &[i64]) -> Clock {
    let times: Arc<Vec<i64>> = Arc::new(
        steps
            .iter()
            .scan(0, |t, step| {
                *t += step;
                Some(*t)
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    Clock::from_fn(move || {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let offset = times
            .get(k)
            .copied()
            .unwrap_or_else(|| times.last().copied().unwrap_or(0) + i64::try_from(k).unwrap());
        ts(T0 + offset)
    })
}

/// An error reduced to what must agree between stores; a store failure is never
/// expected here.
fn kind(e: &RepoError) -> String {
    match e {
        RepoError::NotFound { bot } => format!("NotFound({bot})"),
        RepoError::NameTaken { name } => format!("NameTaken({name})"),
        RepoError::IdTaken { id } => format!("IdTaken({id})"),
        RepoError::InvalidTransition { id, from, to } => {
            format!("InvalidTransition({id}, {from}, {to})")
        }
        other => panic!("unexpected store failure: {other}"),
    }
}

fn outcome<T: std::fmt::Debug>(result: Result<T, RepoError>) -> Result<String, String> {
    result.map(|v| format!("{v:?}")).map_err(|e| kind(&e))
}

fn apply(repo: &(impl BotRepository + ?Sized), op: &Op) -> Result<String, String> {
    let status = |i: Option<usize>| i.map(|i| BotStatus::ALL[i]);
    match op {
        Op::Create {
            id: n,
            name,
            provider,
            channel,
            root: r,
        } => {
            let new = NewBot::with_id(
                id(*n),
                NAMES[*name].parse().unwrap(),
                AiProvider::ALL[*provider],
                "llama3.1:8b".parse().unwrap(),
                ChannelType::ALL[*channel],
            );
            let new = match r {
                Some(r) => new.with_secrets_root(root(*r)),
                None => new,
            };
            outcome(repo.create(&new))
        }
        Op::Get(n) => outcome(repo.get(&id(*n))),
        Op::GetByName(i) => outcome(repo.get_by_name(&NAMES[*i].parse().unwrap())),
        Op::List(s) => outcome(repo.list(status(*s))),
        Op::Walk { status: s, limit } => {
            let mut pages = Vec::new();
            let mut after = None;
            loop {
                let page = match repo.list_page(status(*s), after, *limit) {
                    Ok(page) => page,
                    Err(e) => return Err(kind(&e)),
                };
                let Some(last) = page.last() else { break };
                after = Some(PageCursor::after(last));
                pages.push(page);
                if pages.len() > 64 {
                    return Err("paging does not end".to_owned());
                }
            }
            Ok(format!("{pages:?}"))
        }
        Op::PageAfter {
            status: s,
            at,
            id: n,
            limit,
        } => outcome(repo.list_page(
            status(*s),
            Some(PageCursor {
                created_at: ts(T0 + at),
                id: id(*n),
            }),
            *limit,
        )),
        Op::SetStatus(n, s) => outcome(repo.set_status(&id(*n), BotStatus::ALL[*s])),
        Op::SetContainer(n, c) => {
            let container: Option<ContainerId> = c.map(|c| CONTAINERS[c].parse().unwrap());
            outcome(repo.set_container_id(&id(*n), container.as_ref()))
        }
        Op::Delete(n) => outcome(repo.delete(&id(*n))),
        Op::AdoptSecretsRoot(n, r) => {
            let r: SecretsRootId = root(*r);
            outcome(repo.adopt_secrets_root(&id(*n), &r))
        }
        Op::Reopen => Ok("reopened".to_owned()),
    }
}

/// Runs the model test on the store that `fresh` makes: 128 cases (or
/// `PROPTEST_CASES`) of up to 60 operations each, every result compared with the
/// model's. Panics, with the shrunk case, on the first difference.
///
/// - `source_file`: pass `file!()`. proptest keys its regression file
///   (`proptest-regressions/…`) by the calling test's source file, and replays the
///   seeds saved there before any new case.
/// - `fresh`: an empty store reading the given clock (one per case).
/// - `reopen`: closes the store and opens the same data again with the same clock
///   (a step of the test; return the store unchanged where there is nothing to
///   reopen).
/// - `check`: the store's own checks after each case (SQLite's `integrity_check`, say);
///   it panics on a problem.
pub fn model_proptest<S>(
    source_file: &'static str,
    fresh: impl Fn(Clock) -> S,
    reopen: impl Fn(S, Clock) -> S,
    check: impl Fn(&S),
) where
    S: Deref<Target: BotRepository>,
{
    let mut config = contextualize_config(Config {
        cases: 128,
        ..Config::default()
    });
    config.source_file = Some(source_file);
    let mut runner = TestRunner::new(config);
    // The same strategy, in the same order, as the test's arguments were when it was
    // written with `proptest!`, so the saved seeds replay the same cases.
    let strategy = (
        proptest::collection::vec(op(), 1..60),
        proptest::collection::vec(0..3i64, 60),
    );
    let result = runner.run(&strategy, |(ops, steps)| {
        let model = MemoryRepository::with_clock(scripted_clock(&steps));
        let clock = scripted_clock(&steps);
        let mut store = fresh(clock.clone());
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, Op::Reopen) {
                store = reopen(store, clock.clone());
            }
            let expected = apply(&model, op);
            let actual = apply(&*store, op);
            prop_assert_eq!(&actual, &expected, "op {} {:?}", i, op);
        }
        prop_assert_eq!(outcome(store.list(None)), outcome(model.list(None)));
        check(&store);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
}
