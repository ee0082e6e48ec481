//! Group commit: writes that arrive while another is running share one transaction.
//!
//! SQLite has one writer at a time. Threads that write at the same time queue up; the
//! thread at the front of the queue (the *leader*) takes the writes waiting behind it,
//! and those that join the queue while its transaction runs (up to [`MAX_BATCH`] in
//! all), runs them on the writer connection in one `BEGIN IMMEDIATE` transaction,
//! commits once, hands every caller its own result and wakes the next leader. The
//! first write of a transaction runs without a savepoint; the ones after it each run
//! in a `SAVEPOINT`. A thread that writes alone so runs each write in a transaction of
//! its own, at no extra cost. When the last batch held more than one write, a new
//! leader yields its CPU once before it starts, so that the threads the last commit
//! woke (on a 2-core machine, often queued on the leader's own CPU) can queue their
//! next write in time to join.
//!
//! What a caller sees does not change:
//! - its call returns after the `COMMIT` of the transaction that holds its change,
//!   with the same durability (`synchronous=NORMAL` in WAL mode);
//! - a refused write (not found, name taken, lifecycle) or a failed one is rolled back
//!   (to its savepoint) and returns its own error; the other writes of the batch
//!   commit;
//! - when SQLite undoes the whole transaction after an error (a full disk, an I/O
//!   error), the writes that had already run in it lose nothing: they run again in a
//!   new transaction (so a write closure must be re-runnable, an `FnMut` that starts
//!   from nothing each time);
//! - when `BEGIN` or `COMMIT` fails, every write of the batch returns that error and
//!   none of them is kept;
//! - a write whose closure panics panics in its caller's thread, not in the leader's.
//!
//! Writes commit in the order they queued.
//!
//! Why: a commit appends every page its transaction changed to the WAL, so writes that
//! share a commit write the pages they share (a table leaf, an index leaf) once
//! instead of once each. BENCHMARKS.md has the figures.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use botmaker_domain::RepoError;
use rusqlite::Connection;

/// The most writes one transaction takes: bounds how long a leader works for others
/// (and the latency a write can wait behind a batch).
pub(crate) const MAX_BATCH: usize = 64;

pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";
pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const SAVEPOINT: &str = "SAVEPOINT botmaker_write";
pub(crate) const RELEASE: &str = "RELEASE botmaker_write";
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO botmaker_write";

/// Why a write closure failed: a decided repository error, or SQLite.
pub(crate) enum Failure {
    Repo(RepoError),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

/// An SQLite error for one more caller: `rusqlite::Error` is not `Clone`, and every
/// write of a batch whose `COMMIT` failed gets that failure as its own error.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// The result of a write whose leader unwound before finishing it (a panic outside
/// any write's closure): nothing of it is kept (the transaction rolled back).
fn abandoned() -> Failure {
    Failure::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the write was abandoned: the thread running its transaction panicked".into()),
    ))
}

/// Where a queued write stands; changed and read only under the queue's mutex (as is
/// `Slot::waiting`).
const WAITING: u8 = 0;
const LEAD: u8 = 1;
const DONE: u8 = 2;

/// What the caller of a write waits on, and where its result lands.
struct Slot<T> {
    state: AtomicU8,
    /// Its caller sleeps on `wake` (only a write queued behind a leader does).
    waiting: AtomicBool,
    wake: Condvar,
    result: Mutex<Option<Outcome<T>>>,
}

/// How a write ended.
enum Outcome<T> {
    Returned(Result<T, Failure>),
    /// Its closure panicked (in the leader's thread): the panic resumes in the
    /// caller's thread, as if the write had run there.
    Panicked(Box<dyn Any + Send>),
}

/// What the queue holds of a write, whatever its result type.
trait Job: Send {
    /// Runs the write on the writer, inside the open transaction; `true` when it
    /// succeeded (its changes are to be kept).
    fn apply(&mut self, conn: &Connection) -> bool;
    /// The transaction that held this write ended: `commit` is `None` when it
    /// committed, or the error that undid it. Delivers the caller's result.
    fn finish(&mut self, commit: Option<&rusqlite::Error>);
    /// Sets where the caller stands and wakes it. Under the queue's mutex.
    fn signal(&self, state: u8);
}

struct Write<T, F> {
    run: F,
    outcome: Option<Outcome<T>>,
    slot: Arc<Slot<T>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, Failure> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        // A panic is caught so that the leader can finish the batch, and resumed in the
        // caller's thread; SQLite's statements reset when dropped during the unwind.
        let outcome = match catch_unwind(AssertUnwindSafe(|| (self.run)(conn))) {
            Ok(result) => Outcome::Returned(result),
            Err(payload) => Outcome::Panicked(payload),
        };
        let ok = matches!(outcome, Outcome::Returned(Ok(_)));
        self.outcome = Some(outcome);
        ok
    }

    fn finish(&mut self, commit: Option<&rusqlite::Error>) {
        let result = match (self.outcome.take(), commit) {
            // Its own failure stands whatever became of the transaction.
            (Some(failed @ (Outcome::Panicked(_) | Outcome::Returned(Err(_)))), _) => failed,
            (Some(Outcome::Returned(Ok(value))), None) => Outcome::Returned(Ok(value)),
            // Never ran (BEGIN failed), or ran in a transaction that did not commit.
            (_, Some(e)) => Outcome::Returned(Err(Failure::Sqlite(copy_error(e)))),
            (None, None) => Outcome::Returned(Err(abandoned())),
        };
        *self
            .slot
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(result);
    }

    fn signal(&self, state: u8) {
        self.slot.state.store(state, Ordering::Relaxed);
        // A leader's own write is not waiting: no wake-up (a futex syscall) for it.
        if self.slot.waiting.load(Ordering::Relaxed) {
            self.slot.wake.notify_one();
        }
    }
}

/// The writes a leader took, in queue order.
type Batch = Vec<Box<dyn Job>>;

struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A leader is running a batch (or about to).
    leading: bool,
    /// The last batch had more than one write: other threads are writing.
    crowded: bool,
}

/// The writer connection and the queue of writes waiting for it.
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    conn: Mutex<Connection>,
    stats: Counters,
}

/// What the writer has done since it opened; see [`WriteStats`].
#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    transactions: AtomicU64,
}

/// How many writes a [`SqliteStore`](crate::SqliteStore) has run, and in how many
/// transactions: with writers on several threads, group commit runs several writes per
/// transaction (`writes / transactions` is the mean batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Writes run (each call of a writing method, refused ones included).
    pub writes: u64,
    /// `BEGIN IMMEDIATE` transactions they ran in (attempted, committed or not).
    pub transactions: u64,
}

impl Writer {
    pub(crate) fn new(conn: Connection) -> Self {
        Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                leading: false,
                crowded: false,
            }),
            conn: Mutex::new(conn),
            stats: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            transactions: self.stats.transactions.load(Ordering::Relaxed),
        }
    }

    /// The writer connection, for work outside the queue (tests, and reading its
    /// settings back).
    pub(crate) fn lock_conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `run` in a write transaction, alone or batched with concurrent writes (see
    /// the module's documentation), and returns once that transaction has ended.
    pub(crate) fn submit<T, F>(&self, run: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, Failure> + Send + 'static,
    {
        let (job, slot) = job(run);
        let mut queue = self.lock_queue();
        queue.jobs.push_back(job);
        if queue.leading {
            slot.waiting.store(true, Ordering::Relaxed);
            while slot.state.load(Ordering::Relaxed) == WAITING {
                queue = slot
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            slot.waiting.store(false, Ordering::Relaxed);
        } else {
            queue.leading = true;
        }
        if slot.state.load(Ordering::Relaxed) != DONE {
            // This write leads: it is at the front of the queue.
            let crowded = queue.crowded;
            drop(queue);
            if crowded {
                // Other threads are writing: let those that are ready to queue a write
                // (woken by the last batch, maybe on this CPU) queue it before the
                // batch is taken.
                std::thread::yield_now();
            }
            let mut hand_off = HandOff {
                writer: self,
                batch: Vec::new(),
            };
            let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            run_batch(&conn, &mut hand_off.batch, &self.queue, &self.stats);
        }
        slot.take()
    }
}

/// A write for the queue, and the slot its caller waits on.
fn job<T, F>(run: F) -> (Box<dyn Job>, Arc<Slot<T>>)
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, Failure> + Send + 'static,
{
    let slot = Arc::new(Slot {
        state: AtomicU8::new(WAITING),
        waiting: AtomicBool::new(false),
        wake: Condvar::new(),
        result: Mutex::new(None),
    });
    let job = Box::new(Write {
        run,
        outcome: None,
        slot: Arc::clone(&slot),
    });
    (job, slot)
}

impl<T> Slot<T> {
    /// The result the leader delivered; [`abandoned`] when it delivered none. Resumes
    /// the write's panic, if it panicked.
    fn take(&self) -> Result<T, Failure> {
        let outcome = self
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match outcome {
            Some(Outcome::Returned(result)) => result,
            Some(Outcome::Panicked(payload)) => resume_unwind(payload),
            None => Err(abandoned()),
        }
    }
}

/// A leader's batch: when it is dropped (after the batch ran, or on unwind) every write
/// of it is done and the next write in the queue leads.
struct HandOff<'w> {
    writer: &'w Writer,
    batch: Batch,
}

impl Drop for HandOff<'_> {
    fn drop(&mut self) {
        let mut queue = self.writer.lock_queue();
        queue.crowded = self.batch.len() > 1;
        for job in &self.batch {
            job.signal(DONE);
        }
        match queue.jobs.front() {
            Some(next) => next.signal(LEAD),
            None => queue.leading = false,
        }
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Rolls back the transaction still open when dropped: after a failed write or
/// commit, and on unwind. After a commit there is nothing open and it does nothing.
struct RollbackOnDrop<'a>(&'a Connection);

impl Drop for RollbackOnDrop<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Runs the writes of the queue, and the ones that join it while they run (up to
/// [`MAX_BATCH`] in all), in one transaction, more than one if a transaction ends
/// early (below); finishes every write it took into `batch`.
///
/// The first write of a transaction runs without a savepoint (a write alone pays for
/// no savepoint); when it fails, the transaction is rolled back and it finishes
/// with its error. The writes after it run in savepoints: a refused or failed write is
/// rolled back to its savepoint. When SQLite undoes the whole transaction after a
/// write's error (a full disk, an I/O error) that write finishes with its error and
/// the writes before it, undone too, run again in a new transaction, before the ones
/// not run yet (so a write closure must be re-runnable).
fn run_batch(conn: &Connection, batch: &mut Batch, queue: &Mutex<Queue>, stats: &Counters) {
    // Takes what waits in the queue, within the batch's bound; false if nothing.
    let mut more = |batch: &mut Batch| {
        let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
        let take = queue.jobs.len().min(MAX_BATCH.saturating_sub(batch.len()));
        batch.extend(queue.jobs.drain(..take));
        take > 0
    };
    // The writes before `start` are finished.
    let mut start = 0;
    let began = Instant::now();
    let mut transactions = 0u32;
    while start < batch.len() || more(batch) {
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        transactions += 1;
        let Some(failed) = run_transaction(conn, batch, start, &mut more) else {
            break;
        };
        // It finished; the ones before it run again in the next transaction.
        batch[start..=failed].rotate_right(1);
        start += 1;
    }
    stats
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let elapsed_us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::trace!(
        writes = batch.len(),
        transactions,
        elapsed_us,
        "group commit batch"
    );
    // A commit that crosses the WAL's auto-checkpoint threshold checkpoints inside
    // it (and a busy wait on another process's lock shows here too): report slow ones.
    if elapsed_us >= SLOW_BATCH_US {
        tracing::warn!(
            writes = batch.len(),
            transactions,
            elapsed_us,
            "slow write transaction (a WAL checkpoint, a slow fsync or a busy wait)"
        );
    }
}

/// From how long a batch (its transactions, their commits and the checkpoint a
/// commit may run) is reported as slow: 200 ms.
const SLOW_BATCH_US: u64 = 200_000;

/// Runs `batch[start..]` and what `more` adds in one transaction and finishes them,
/// unless a write's failure ends the transaction early (see [`run_batch`]): then only
/// that write finished, and its index is returned.
fn run_transaction(
    conn: &Connection,
    batch: &mut Batch,
    start: usize,
    more: &mut dyn FnMut(&mut Batch) -> bool,
) -> Option<usize> {
    if let Err(e) = exec(conn, BEGIN_IMMEDIATE) {
        finish_all(&mut batch[start..], Some(&e));
        return None;
    }
    let open = RollbackOnDrop(conn);
    let mut i = start;
    while i < batch.len() || more(batch) {
        let ended = if i == start {
            !batch[i].apply(conn)
        } else {
            let closed = exec(conn, SAVEPOINT).and_then(|()| {
                let ok = batch[i].apply(conn);
                if !ok && conn.is_autocommit() {
                    return Ok(true);
                }
                if !ok {
                    exec(conn, ROLLBACK_TO)?;
                }
                exec(conn, RELEASE).map(|()| false)
            });
            match closed {
                Ok(ended) => ended,
                Err(e) => {
                    drop(open);
                    finish_all(&mut batch[start..], Some(&e));
                    return None;
                }
            }
        };
        if ended {
            drop(open);
            batch[i].finish(None);
            return Some(i);
        }
        i += 1;
    }
    let commit = exec(conn, COMMIT);
    drop(open);
    finish_all(&mut batch[start..], commit.as_ref().err());
    None
}

fn finish_all(jobs: &mut [Box<dyn Job>], ended: Option<&rusqlite::Error>) {
    for job in jobs {
        job.finish(ended);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use botmaker_testkit::watchdog::Watchdog;
    use proptest::prelude::*;

    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
             CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
             CREATE TABLE child (p INTEGER REFERENCES t (k) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        (dir, conn)
    }

    fn rows(conn: &Connection) -> Vec<(i64, i64)> {
        let mut stmt = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A write of the model: what it does to table `t`.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// Inserts (k, v); a duplicate key is SQLite's constraint error.
        Insert(i64, i64),
        /// Deletes k; refused (not found) when it is missing.
        Delete(i64),
        /// Adds 1 to v of k, then refuses: the change must not be kept.
        BumpThenRefuse(i64),
        /// Inserts (k, 0), then makes SQLite undo the whole transaction and fails.
        InsertThenLose(i64),
    }

    /// What a caller saw, comparable.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Ok,
        Refused,
        Sqlite(Option<rusqlite::ErrorCode>),
    }

    fn seen(result: Result<(), Failure>) -> Seen {
        match result {
            Ok(()) => Seen::Ok,
            Err(Failure::Repo(_)) => Seen::Refused,
            Err(Failure::Sqlite(e)) => Seen::Sqlite(e.sqlite_error_code()),
        }
    }

    fn refused(k: i64) -> Failure {
        Failure::Repo(RepoError::Corrupt {
            detail: format!("refused {k}"),
        })
    }

    /// `op` as a write closure that counts its runs in `runs`.
    fn write(
        op: Op,
        runs: Arc<AtomicUsize>,
    ) -> impl FnMut(&Connection) -> Result<(), Failure> + Send + 'static {
        move |conn| {
            runs.fetch_add(1, Ordering::Relaxed);
            match op {
                Op::Insert(k, v) => {
                    conn.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", [k, v])?;
                }
                Op::Delete(k) => {
                    if conn.execute("DELETE FROM t WHERE k = ?1", [k])? == 0 {
                        return Err(refused(k));
                    }
                }
                Op::BumpThenRefuse(k) => {
                    conn.execute("UPDATE t SET v = v + 1 WHERE k = ?1", [k])?;
                    return Err(refused(k));
                }
                Op::InsertThenLose(k) => {
                    conn.execute("INSERT OR IGNORE INTO t (k, v) VALUES (?1, 0)", [k])?;
                    conn.execute_batch("ROLLBACK")?;
                    return Err(Failure::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                        None,
                    )));
                }
            }
            Ok(())
        }
    }

    /// Queues `jobs` and runs them as a leader does.
    fn run_queued(conn: &Connection, jobs: Vec<Box<dyn Job>>) {
        let queue = Mutex::new(Queue {
            jobs: jobs.into(),
            leading: true,
            crowded: false,
        });
        let mut batch = Vec::new();
        run_batch(conn, &mut batch, &queue, &Counters::default());
        assert!(queue.lock().unwrap().jobs.is_empty());
    }

    /// Runs `ops` as one batch; the callers' results and each op's number of runs.
    fn batch(conn: &Connection, ops: &[Op]) -> (Vec<Seen>, Vec<usize>) {
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        let mut runs = Vec::new();
        for &op in ops {
            let count = Arc::new(AtomicUsize::new(0));
            let (job, slot) = job(write(op, Arc::clone(&count)));
            jobs.push(job);
            slots.push(slot);
            runs.push(count);
        }
        run_queued(conn, jobs);
        assert!(conn.is_autocommit(), "a batch left a transaction open");
        let seen = slots.iter().map(|s| seen(s.take())).collect();
        (
            seen,
            runs.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        let k = 0i64..6;
        prop_oneof![
            4 => (k.clone(), 0i64..100).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => k.clone().prop_map(Op::Delete),
            1 => k.clone().prop_map(Op::BumpThenRefuse),
            1 => k.prop_map(Op::InsertThenLose),
        ]
    }

    proptest! {
        /// A batch is indistinguishable from running its writes one by one, in queue
        /// order: the same result for every caller, the same table after.
        #[test]
        fn a_batch_is_the_same_as_one_write_at_a_time(
            setup in prop::collection::vec(op(), 0..6),
            ops in prop::collection::vec(op(), 1..24),
        ) {
            let _bound = bound("a batch against one write at a time");
            let (_a, batched) = db();
            let (_b, one_by_one) = db();
            for &op in &setup {
                batch(&batched, &[op]);
                batch(&one_by_one, &[op]);
            }
            let (seen_batched, _) = batch(&batched, &ops);
            let seen_alone: Vec<Seen> = ops.iter().map(|&op| batch(&one_by_one, &[op]).0.remove(0)).collect();
            prop_assert_eq!(seen_batched, seen_alone);
            prop_assert_eq!(rows(&batched), rows(&one_by_one));
        }
    }

    #[test]
    fn a_refused_write_in_a_batch_keeps_nothing_and_spares_the_others() {
        let _bound = bound("a refused write in a batch keeps nothing and spares the others");
        let (_dir, conn) = db();
        let (seen, runs) = batch(
            &conn,
            &[
                Op::Insert(1, 10),
                Op::BumpThenRefuse(1),
                Op::Insert(1, 11),
                Op::Insert(2, 20),
            ],
        );
        assert_eq!(
            seen,
            [
                Seen::Ok,
                Seen::Refused,
                Seen::Sqlite(Some(rusqlite::ErrorCode::ConstraintViolation)),
                Seen::Ok
            ]
        );
        assert_eq!(runs, [1, 1, 1, 1]);
        assert_eq!(rows(&conn), [(1, 10), (2, 20)]);
    }

    #[test]
    fn writes_undone_with_a_lost_transaction_run_again() {
        let _bound = bound("writes undone with a lost transaction run again");
        let (_dir, conn) = db();
        let (seen, runs) = batch(
            &conn,
            &[
                Op::Insert(1, 10),
                Op::Insert(2, 20),
                Op::InsertThenLose(3),
                Op::Insert(4, 40),
            ],
        );
        assert_eq!(
            seen,
            [
                Seen::Ok,
                Seen::Ok,
                Seen::Sqlite(Some(rusqlite::ErrorCode::SystemIoFailure)),
                Seen::Ok
            ]
        );
        // The two before the loss ran twice, the rest once.
        assert_eq!(runs, [2, 2, 1, 1]);
        assert_eq!(rows(&conn), [(1, 10), (2, 20), (4, 40)]);
    }

    #[test]
    fn a_failed_commit_fails_every_write_of_the_batch() {
        let _bound = bound("a failed commit fails every write of the batch");
        let (_dir, conn) = db();
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let (j, s) = job(write(Op::Insert(1, 10), Arc::clone(&runs)));
        jobs.push(j);
        slots.push(s);
        // A dangling reference: the deferred foreign key fails the COMMIT.
        let (j, s) = job(|conn: &Connection| {
            conn.execute("INSERT INTO child (p) VALUES (99)", [])?;
            Ok(())
        });
        jobs.push(j);
        slots.push(s);
        let (j, s) = job(write(Op::Insert(2, 20), Arc::clone(&runs)));
        jobs.push(j);
        slots.push(s);
        run_queued(&conn, jobs);
        assert!(conn.is_autocommit());
        for slot in &slots {
            assert_eq!(
                seen(slot.take()),
                Seen::Sqlite(Some(rusqlite::ErrorCode::ConstraintViolation))
            );
        }
        assert_eq!(rows(&conn), []);
        let children: i64 = conn
            .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
            .unwrap();
        assert_eq!(children, 0);
    }

    #[test]
    fn a_failed_begin_fails_every_write_and_runs_none() {
        let _bound = bound("a failed begin fails every write and runs none");
        let (dir, conn) = db();
        conn.busy_timeout(std::time::Duration::ZERO).unwrap();
        let other = Connection::open(dir.path().join("t.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (seen, runs) = batch(&conn, &[Op::Insert(1, 10), Op::Insert(2, 20)]);
        assert_eq!(
            seen,
            [
                Seen::Sqlite(Some(rusqlite::ErrorCode::DatabaseBusy)),
                Seen::Sqlite(Some(rusqlite::ErrorCode::DatabaseBusy))
            ]
        );
        assert_eq!(runs, [0, 0]);
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(rows(&conn), []);
    }

    fn writer() -> (tempfile::TempDir, Arc<Writer>) {
        let (dir, conn) = db();
        (dir, Arc::new(Writer::new(conn)))
    }

    /// Waits until `n` writes are queued behind the running leader.
    fn wait_queued(writer: &Writer, n: usize) {
        while writer.lock_queue().jobs.len() < n {
            thread::yield_now();
        }
    }

    #[test]
    fn writes_queued_behind_a_leader_commit_together() {
        let _bound = bound("writes queued behind a leader commit together");
        let (_dir, writer) = writer();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        // The first write holds the writer until the others are queued.
        let first = {
            let writer = Arc::clone(&writer);
            thread::spawn(move || {
                writer.submit(move |conn| {
                    let _ = gate.lock().unwrap().recv();
                    conn.execute("INSERT INTO t (k, v) VALUES (0, 0)", [])?;
                    Ok(conn.is_autocommit())
                })
            })
        };
        while !writer.lock_queue().leading {
            thread::yield_now();
        }
        // Five writes queue behind it. The first inserts a reference to a row that
        // only the last inserts: the deferred foreign key lets it commit only in the
        // same transaction as the last.
        let others: Vec<_> = (1..=5i64)
            .map(|k| {
                let w = Arc::clone(&writer);
                let handle = thread::spawn(move || {
                    w.submit(move |conn| {
                        if k == 1 {
                            conn.execute("INSERT INTO child (p) VALUES (5)", [])?;
                        }
                        conn.execute("INSERT INTO t (k, v) VALUES (?1, ?1)", [k])?;
                        Ok(())
                    })
                });
                wait_queued(&writer, usize::try_from(k).unwrap());
                handle
            })
            .collect();
        release.send(()).unwrap();
        assert!(matches!(first.join().unwrap(), Ok(false)));
        for handle in others {
            assert_eq!(seen(handle.join().unwrap()), Seen::Ok);
        }
        let conn = writer.lock_conn();
        assert_eq!(rows(&conn).len(), 6);
        assert!(conn.is_autocommit());
        drop(conn);
        // A batch of six: the next leader will yield first.
        assert!(writer.lock_queue().crowded);
        // Alone, the same dangling reference fails its commit.
        let dangling = writer.submit(|conn| {
            conn.execute("INSERT INTO child (p) VALUES (42)", [])?;
            Ok(())
        });
        // The first and the five that queued while it ran together, the dangling one
        // alone.
        assert_eq!(
            writer.stats(),
            WriteStats {
                writes: 7,
                transactions: 2
            }
        );
        assert_eq!(
            seen(dangling),
            Seen::Sqlite(Some(rusqlite::ErrorCode::ConstraintViolation))
        );
        assert!(!writer.lock_queue().crowded);
    }

    #[test]
    fn a_panicking_write_panics_in_its_callers_thread_and_spares_the_others() {
        let _bound = bound("a panicking write panics in its callers thread and spares the others");
        let (_dir, writer) = writer();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let first = {
            let writer = Arc::clone(&writer);
            thread::spawn(move || {
                writer.submit(move |conn| {
                    let _ = gate.lock().unwrap().recv();
                    conn.execute("INSERT INTO t (k, v) VALUES (0, 0)", [])?;
                    Ok(())
                })
            })
        };
        while !writer.lock_queue().leading {
            thread::yield_now();
        }
        // Queued behind it: a write, a panicking write, a write. The leader runs the
        // three in its transaction after its own.
        let spawn = |k: i64, n: usize, panics: bool| {
            let w = Arc::clone(&writer);
            let handle = thread::spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    w.submit(move |conn| {
                        conn.execute("INSERT INTO t (k, v) VALUES (?1, ?1)", [k])?;
                        assert!(!panics, "a write that panics");
                        Ok(())
                    })
                }))
            });
            wait_queued(&writer, n);
            handle
        };
        let a = spawn(1, 1, false);
        let p = spawn(2, 2, true);
        let c = spawn(3, 3, false);
        release.send(()).unwrap();
        assert_eq!(seen(first.join().unwrap()), Seen::Ok);
        // The panic resumes in its caller's thread (not in the leader's) ...
        assert!(p.join().unwrap().is_err());
        // ... and the other writes of the batch commit without its change.
        for other in [a, c] {
            assert_eq!(seen(other.join().unwrap().unwrap()), Seen::Ok);
        }
        assert_eq!(
            writer.stats(),
            WriteStats {
                writes: 4,
                transactions: 1
            }
        );
        let conn = writer.lock_conn();
        assert_eq!(rows(&conn), [(0, 0), (1, 1), (3, 3)]);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_leader_that_unwinds_abandons_its_batch_and_the_next_write_leads() {
        let _bound = bound("a leader that unwinds abandons its batch and the next write leads");
        let (_dir, writer) = writer();
        let (job, slot) = job(|conn: &Connection| {
            conn.execute("INSERT INTO t (k, v) VALUES (1, 1)", [])?;
            Ok(())
        });
        // A leader took the write, then unwound before running it.
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            writer.lock_queue().leading = true;
            let _hand_off = HandOff {
                writer: &writer,
                batch: vec![job],
            };
            panic!("the leader unwinds");
        }));
        assert!(unwound.is_err());
        assert_eq!(
            seen(slot.take()),
            Seen::Sqlite(Some(rusqlite::ErrorCode::OperationAborted))
        );
        // Leadership was released: the next write runs.
        let next = writer.submit(|conn| {
            conn.execute("INSERT INTO t (k, v) VALUES (2, 2)", [])?;
            Ok(())
        });
        assert_eq!(seen(next), Seen::Ok);
        assert_eq!(rows(&writer.lock_conn()), [(2, 2)]);
    }

    #[test]
    fn many_threads_writing_lose_nothing() {
        let _bound = bound("many threads writing lose nothing");
        let (_dir, writer) = writer();
        let threads: Vec<_> = (0..8i64)
            .map(|t| {
                let writer = Arc::clone(&writer);
                thread::spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..200i64 {
                        // Every key twice (by two threads): one insert wins.
                        let k = (t / 2) * 1000 + i;
                        let op = Op::Insert(k, t);
                        seen.push((k, self::seen(writer.submit(write(op, Arc::default())))));
                    }
                    seen
                })
            })
            .collect();
        let mut won = std::collections::BTreeSet::new();
        for handle in threads {
            for (k, s) in handle.join().unwrap() {
                match s {
                    Seen::Ok => assert!(won.insert(k), "{k} inserted twice"),
                    Seen::Sqlite(Some(rusqlite::ErrorCode::ConstraintViolation)) => {}
                    other => panic!("{k}: {other:?}"),
                }
            }
        }
        let conn = writer.lock_conn();
        let keys: Vec<i64> = rows(&conn).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, won.into_iter().collect::<Vec<_>>());
        assert_eq!(keys.len(), 4 * 200);
    }

    /// A bound on each test: a lost wake-up or a batch loop that never ends fails the
    /// test (and kills the mutant) instead of hanging it.
    fn bound(what: &str) -> Watchdog {
        Watchdog::new(Duration::from_secs(30), what)
    }

    #[test]
    fn a_write_queued_behind_a_leader_sleeps_until_the_hand_off_then_leads() {
        let _bound = bound("a write queued behind a leader");
        let (_dir, writer) = writer();
        // A leader is running, as far as the queue knows.
        writer.lock_queue().leading = true;
        let queued = {
            let writer = Arc::clone(&writer);
            thread::spawn(move || {
                writer.submit(|conn| {
                    conn.execute("INSERT INTO t (k, v) VALUES (1, 1)", [])?;
                    Ok(())
                })
            })
        };
        wait_queued(&writer, 1);
        // It waits for its turn: it runs nothing, even with the connection free.
        thread::sleep(Duration::from_millis(300));
        assert!(
            !queued.is_finished(),
            "a write queued behind a leader ran without waiting for its turn"
        );
        assert_eq!(rows(&writer.lock_conn()), []);
        assert_eq!(writer.lock_queue().jobs.len(), 1);
        // The leader ends (a batch of its own write): the hand-off wakes the queued
        // write, which leads and runs itself.
        let (own, own_slot) = job(|_: &Connection| Ok(()));
        drop(HandOff {
            writer: &writer,
            batch: vec![own],
        });
        assert!(matches!(own_slot.state.load(Ordering::Relaxed), DONE));
        assert_eq!(seen(queued.join().unwrap()), Seen::Ok);
        assert_eq!(rows(&writer.lock_conn()), [(1, 1)]);
        let queue = writer.lock_queue();
        assert!(queue.jobs.is_empty() && !queue.leading);
    }

    #[test]
    fn only_a_batch_of_more_than_one_write_makes_the_next_leader_yield() {
        let _bound = bound("hand-offs");
        let (_dir, writer) = writer();
        let hand_off = |writes: usize| {
            writer.lock_queue().leading = true;
            let batch = (0..writes)
                .map(|_| job(|_: &Connection| Ok(())).0)
                .collect();
            drop(HandOff {
                writer: &writer,
                batch,
            });
            let queue = writer.lock_queue();
            assert!(!queue.leading, "leadership kept after a batch of {writes}");
            queue.crowded
        };
        // A thread writing alone never yields; after a batch of several, other
        // threads are writing and the next leader lets them queue first.
        assert_eq!(
            [1, 2, 3, 1, MAX_BATCH].map(hand_off),
            [false, true, true, false, true]
        );
    }

    /// The events a batch sends, one line each: its level, then every field.
    #[derive(Clone, Default)]
    pub(crate) struct Events(pub(crate) Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            use std::fmt::Write as _;
            struct Line(String);
            impl tracing::field::Visit for Line {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    let _ = write!(self.0, " {}={value:?}", field.name());
                }
            }
            let mut line = Line(event.metadata().level().to_string());
            event.record(&mut line);
            self.0.lock().unwrap().push(line.0);
        }
    }

    /// Runs `ops` as one batch and returns the events it sent.
    fn batch_events(conn: &Connection, ops: &[Op], each_run_takes: Duration) -> Vec<String> {
        use tracing_subscriber::layer::SubscriberExt as _;
        let events = Events::default();
        let subscriber = tracing_subscriber::registry().with(events.clone());
        tracing::subscriber::with_default(subscriber, || {
            let jobs = ops
                .iter()
                .map(|&op| {
                    let mut run = write(op, Arc::default());
                    job(move |conn: &Connection| {
                        thread::sleep(each_run_takes);
                        run(conn)
                    })
                    .0
                })
                .collect();
            run_queued(conn, jobs);
        });
        events.0.lock().unwrap().clone()
    }

    fn field(line: &str, name: &str) -> u64 {
        let at = line
            .find(&format!(" {name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        line[at + name.len() + 2..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn each_batch_reports_its_writes_and_transactions_and_a_slow_one_warns() {
        let _bound = bound("batches with events");
        let (_dir, conn) = db();
        // A lost transaction: the batch runs in two.
        let fast = batch_events(
            &conn,
            &[Op::Insert(1, 10), Op::InsertThenLose(2), Op::Insert(3, 30)],
            Duration::ZERO,
        );
        // Three writes of 100 ms each: 300 ms, over the 200 ms from which a batch is
        // reported as slow.
        let slow = batch_events(
            &conn,
            &[Op::Insert(4, 40), Op::Insert(5, 50), Op::Insert(6, 60)],
            Duration::from_millis(100),
        );
        for (events, transactions) in [(&fast, 2), (&slow, 1)] {
            let [report, warnings @ ..] = &events[..] else {
                panic!("no event: {events:?}");
            };
            assert!(
                report.starts_with("TRACE message=group commit batch "),
                "{report}"
            );
            assert_eq!(field(report, "writes"), 3, "{report}");
            assert_eq!(field(report, "transactions"), transactions, "{report}");
            // A warning exactly when the batch took 200 ms or more, with the same
            // figures.
            let elapsed = field(report, "elapsed_us");
            let expected: &[String] = if elapsed >= SLOW_BATCH_US {
                &[format!(
                    "WARN message=slow write transaction (a WAL checkpoint, a slow fsync or \
                     a busy wait) writes=3 transactions={transactions} elapsed_us={elapsed}"
                )]
            } else {
                &[]
            };
            assert_eq!(warnings, expected, "{report}");
        }
        assert!(field(&slow[0], "elapsed_us") >= 300_000, "{slow:?}");
    }
}
