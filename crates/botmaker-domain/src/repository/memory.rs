//! The in-memory [`BotRepository`]: the model the SQLite store is tested against, and a
//! test double for services.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BotRepository, Clock, PageCursor, RepoError};
use crate::{Bot, BotId, BotName, BotRef, BotStatus, ContainerId, NewBot, SecretsRootId};

/// An in-memory bot registry behind one [`Mutex`]. Nothing is persisted.
///
/// It has exactly the semantics the [`BotRepository`] docs state, and the same
/// observable behaviour as the SQLite store (both pass one conformance suite and a
/// model-based test compares them):
///
/// - the clock is read exactly once by each `create`, `set_status` and
///   `set_container_id` call, before the registry is looked at, whether the call then
///   succeeds or fails (the trait's contract), so two stores given equal stepping
///   clocks stay comparable;
/// - `create` checks the id before the name: a bot that collides on both gets
///   [`RepoError::IdTaken`];
/// - a failed call changes nothing.
///
/// A panic in another thread while it held the lock does not make this store
/// unusable: every operation leaves the data consistent before it can panic, so the
/// poisoned lock is recovered.
///
/// ```
/// use botmaker_domain::{BotRepository, BotStatus, MemoryRepository, NewBot};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let repo = MemoryRepository::new();
/// let bot = repo.create(&NewBot::new(
///     "alpha".parse()?,
///     "openai".parse()?,
///     "gpt-4o".parse()?,
///     "slack".parse()?,
/// ))?;
/// assert_eq!(repo.get(&bot.id)?.status, BotStatus::Created);
/// assert_eq!(repo.set_status(&bot.id, BotStatus::Starting)?.status, BotStatus::Starting);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryRepository {
    state: Mutex<State>,
    clock: Clock,
}

#[derive(Debug, Default)]
struct State {
    by_id: BTreeMap<BotId, Bot>,
    by_name: BTreeMap<BotName, BotId>,
}

impl MemoryRepository {
    /// An empty registry that timestamps with the system clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::system())
    }

    /// An empty registry that takes its timestamps from `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `backend` field of its spans ([`observe`](crate::observe)).
const BACKEND: &str = "memory";

impl Default for MemoryRepository {
    fn default() -> Self {
        Self::new()
    }
}

fn not_found(id: &BotId) -> RepoError {
    RepoError::NotFound {
        bot: BotRef::Id(*id),
    }
}

/// The listing order: newest first, ties broken by id, descending.
fn newest_first(a: &Bot, b: &Bot) -> std::cmp::Ordering {
    (b.created_at, b.id).cmp(&(a.created_at, a.id))
}

impl State {
    fn matching(&self, status: Option<BotStatus>) -> impl Iterator<Item = &Bot> {
        self.by_id
            .values()
            .filter(move |b| status.is_none_or(|s| b.status == s))
    }
}

impl BotRepository for MemoryRepository {
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError> {
        crate::observe::run(crate::op_span!("create", BACKEND, bot_id = new.id), || {
            let now = self.clock.now();
            let mut state = self.state();
            if state.by_id.contains_key(&new.id) {
                return Err(RepoError::IdTaken { id: new.id });
            }
            if state.by_name.contains_key(&new.name) {
                return Err(RepoError::NameTaken {
                    name: new.name.clone(),
                });
            }
            let bot = Bot::from_new(new.clone(), now);
            state.by_name.insert(bot.name.clone(), bot.id);
            state.by_id.insert(bot.id, bot.clone());
            Ok(bot)
        })
    }

    fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        crate::observe::run(crate::op_span!("get", BACKEND, bot_id = id), || {
            self.state()
                .by_id
                .get(id)
                .cloned()
                .ok_or_else(|| not_found(id))
        })
    }

    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError> {
        crate::observe::run(crate::op_span!("get_by_name", BACKEND), || {
            let state = self.state();
            state
                .by_name
                .get(name)
                .and_then(|id| state.by_id.get(id))
                .cloned()
                .ok_or_else(|| RepoError::NotFound {
                    bot: BotRef::Name(name.clone()),
                })
        })
    }

    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError> {
        crate::observe::run(crate::op_span!("list", BACKEND), || {
            let mut bots: Vec<Bot> = self.state().matching(status).cloned().collect();
            bots.sort_by(newest_first);
            Ok(bots)
        })
    }

    fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>, RepoError> {
        crate::observe::run(crate::op_span!("list_page", BACKEND), || {
            let state = self.state();
            let mut bots: Vec<&Bot> = state
                .matching(status)
                .filter(|b| after.is_none_or(|c| (b.created_at, b.id) < (c.created_at, c.id)))
                .collect();
            bots.sort_by(|a, b| newest_first(a, b));
            Ok(bots.into_iter().take(limit).cloned().collect())
        })
    }

    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError> {
        crate::observe::run(crate::op_span!("set_status", BACKEND, bot_id = id), || {
            let now = self.clock.now();
            let mut state = self.state();
            let bot = state.by_id.get_mut(id).ok_or_else(|| not_found(id))?;
            if !bot.status.can_transition_to(to) {
                return Err(RepoError::InvalidTransition {
                    id: *id,
                    from: bot.status,
                    to,
                });
            }
            bot.status = to;
            bot.updated_at = now;
            Ok(bot.clone())
        })
    }

    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError> {
        crate::observe::run(
            crate::op_span!("set_container_id", BACKEND, bot_id = id),
            || {
                let now = self.clock.now();
                let mut state = self.state();
                let bot = state.by_id.get_mut(id).ok_or_else(|| not_found(id))?;
                bot.container_id = container.cloned();
                bot.updated_at = now;
                Ok(bot.clone())
            },
        )
    }

    fn adopt_secrets_root(&self, id: &BotId, root: &SecretsRootId) -> Result<Bot, RepoError> {
        crate::observe::run(
            crate::op_span!("adopt_secrets_root", BACKEND, bot_id = id),
            || {
                let mut state = self.state();
                let bot = state.by_id.get_mut(id).ok_or_else(|| not_found(id))?;
                if bot.secrets_root.is_none() {
                    bot.secrets_root = Some(*root);
                }
                Ok(bot.clone())
            },
        )
    }

    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        crate::observe::run(crate::op_span!("delete", BACKEND, bot_id = id), || {
            let mut state = self.state();
            let bot = state.by_id.remove(id).ok_or_else(|| not_found(id))?;
            state.by_name.remove(&bot.name);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AiProvider, ChannelType, Timestamp};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn new_bot(name: &str) -> NewBot {
        NewBot::new(
            name.parse().unwrap(),
            AiProvider::Anthropic,
            "claude-sonnet-4".parse().unwrap(),
            ChannelType::Slack,
        )
    }

    fn stepping_clock() -> Clock {
        let n = Arc::new(AtomicI64::new(0));
        Clock::from_fn(move || {
            Timestamp::from_unix_micros(n.fetch_add(1, Ordering::SeqCst)).unwrap()
        })
    }

    #[test]
    fn create_get_update_delete() {
        let repo = MemoryRepository::with_clock(stepping_clock());
        let bot = repo.create(&new_bot("alpha")).unwrap();
        assert_eq!(bot.created_at.as_unix_micros(), 0);
        assert_eq!(repo.get(&bot.id).unwrap(), bot);
        assert_eq!(repo.get_by_name(&bot.name).unwrap(), bot);

        let started = repo.set_status(&bot.id, BotStatus::Starting).unwrap();
        assert_eq!(started.updated_at.as_unix_micros(), 1);
        let err = repo.set_status(&bot.id, BotStatus::Stopped).unwrap_err();
        assert!(matches!(err, RepoError::InvalidTransition { .. }), "{err}");
        assert_eq!(
            repo.get(&bot.id).unwrap(),
            started,
            "a failed call changes nothing"
        );

        repo.delete(&bot.id).unwrap();
        assert!(matches!(repo.get(&bot.id), Err(RepoError::NotFound { .. })));
        assert!(matches!(
            repo.get_by_name(&bot.name),
            Err(RepoError::NotFound { .. })
        ));
        // The name is free again.
        repo.create(&new_bot("alpha")).unwrap();
    }

    #[test]
    fn id_is_checked_before_name() {
        let repo = MemoryRepository::new();
        let bot = repo.create(&new_bot("alpha")).unwrap();
        let mut again = new_bot("alpha");
        again.id = bot.id;
        assert!(matches!(
            repo.create(&again),
            Err(RepoError::IdTaken { .. })
        ));
        assert!(matches!(
            repo.create(&new_bot("alpha")),
            Err(RepoError::NameTaken { .. })
        ));
        assert_eq!(repo.list(None).unwrap(), vec![bot]);
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let repo = Arc::new(MemoryRepository::new());
        let r = Arc::clone(&repo);
        let joined = std::thread::spawn(move || {
            let _guard = r.state();
            panic!("poison the lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(repo.state.is_poisoned());
        repo.create(&new_bot("alpha")).unwrap();
        assert_eq!(repo.list(None).unwrap().len(), 1);
    }
}
