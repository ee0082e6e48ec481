//! The store's pool of read-only connections.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use rusqlite::Connection;

/// A pool of read-only connections, each behind its own mutex. A read takes one for
/// the duration of one statement.
///
/// Each thread has a home slot (threads are numbered round-robin as they first
/// read), so threads that read at the same time, up to the number of connections,
/// each lock a different mutex and never wait for each other; one thread keeps
/// reusing the same connection and its warm page cache. A thread whose home slot is
/// taken tries the others, and when every connection is taken it waits for its home
/// slot.
pub(crate) struct ReaderPool {
    slots: Box<[Mutex<Connection>]>,
}

/// The next home slot number handed to a thread.
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's home slot number (before `% slots`); `usize::MAX` until first use.
    static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn home_slot() -> usize {
    HOME.with(|home| {
        let mut h = home.get();
        if h == usize::MAX {
            h = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
            home.set(h);
        }
        h
    })
}

impl ReaderPool {
    /// A pool of these connections (at least one).
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        Self {
            slots: connections.into_iter().map(Mutex::new).collect(),
        }
    }

    /// Every connection in turn (each locked while `f` runs on it).
    pub(crate) fn each<T>(&self, mut f: impl FnMut(&Connection) -> T) -> Vec<T> {
        self.slots
            .iter()
            .map(|slot| f(&slot.lock().unwrap_or_else(PoisonError::into_inner)))
            .collect()
    }

    /// A connection for one statement: this thread's home slot if free, else any free
    /// one, else the home slot once it is free.
    // `inline`: every read takes a connection, from another module; this lets the
    // call inline across codegen units.
    #[inline]
    pub(crate) fn take(&self) -> MutexGuard<'_, Connection> {
        let len = self.slots.len();
        let home = home_slot() % len;
        for i in 0..len {
            match self.slots[(home + i) % len].try_lock() {
                Ok(conn) => return conn,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.slots[home]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
