//! The connection pool: idle clients in a `Mutex<Vec<_>>`, at most `max` open, each
//! with its own cache of prepared statements. A client whose connection closed or
//! failed is dropped instead of returned, and a lost connection empties the idle list
//! (after a server restart every idle client is dead), so the pool recovers by itself:
//! the next checkout connects anew.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};

use crate::DatabaseUrl;

/// One pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// The prepared statement for `sql`, prepared on first use on this connection.
    pub(crate) fn prepare(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

struct State {
    idle: Vec<Conn>,
    /// Connections out of the pool plus idle ones plus ones being opened.
    open: usize,
    /// Checkouts waiting on `freed`: a connection coming back wakes one only if there
    /// is one (a condvar notification is a system call even with no waiter, and this
    /// is every operation's path).
    waiting: usize,
}

/// Why no connection could be had.
pub(crate) enum Checkout {
    /// Every connection stayed in use for the whole wait.
    Timeout(Duration),
    /// Opening a new connection failed.
    Connect(postgres::Error),
}

pub(crate) struct Pool {
    url: DatabaseUrl,
    max: usize,
    wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    pub(crate) fn new(url: DatabaseUrl, max: usize, wait: Duration) -> Self {
        Self {
            url,
            max: max.max(1),
            wait,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the idle list inconsistent (it is
        // only pushed and popped): go on with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a connection opened elsewhere (the opener's) into the pool, idle.
    pub(crate) fn adopt(&self, client: Client) {
        let mut state = self.lock();
        state.open += 1;
        state.idle.push(Conn {
            client,
            statements: HashMap::new(),
        });
    }

    /// An idle connection, a new one if fewer than `max` are open, or the first one
    /// freed within the wait.
    pub(crate) fn get(&self) -> Result<Lease<'_>, Checkout> {
        let start = Instant::now();
        let mut state = self.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                    broken: false,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.url.config().connect(NoTls) {
                    Ok(client) => Ok(Lease {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: HashMap::new(),
                        }),
                        broken: false,
                    }),
                    Err(e) => {
                        let mut state = self.lock();
                        state.open -= 1;
                        self.wake_one(state);
                        Err(Checkout::Connect(e))
                    }
                };
            }
            let waited = start.elapsed();
            let Some(left) = self.wait.checked_sub(waited).filter(|d| !d.is_zero()) else {
                return Err(Checkout::Timeout(waited));
            };
            state.waiting += 1;
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting -= 1;
        }
    }

    /// Drops every idle connection: after one was found dead, the others (opened
    /// before the same server restart) are too.
    pub(crate) fn clear_idle(&self) {
        let dropped = {
            let mut state = self.lock();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            idle
        };
        // Closing clients outside the lock.
        drop(dropped);
        self.freed.notify_all();
    }

    /// Wakes one waiting checkout, if any, after `state` changed; releases the lock.
    fn wake_one(&self, state: MutexGuard<'_, State>) {
        let waiting = state.waiting > 0;
        drop(state);
        if waiting {
            self.freed.notify_one();
        }
    }

    /// How many connections are open (idle or in use).
    pub(crate) fn open_count(&self) -> usize {
        self.lock().open
    }

    /// How many idle connections wait in the pool.
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().idle.len()
    }
}

/// A connection out of the pool; back in it on drop, unless it broke.
pub(crate) struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    broken: bool,
}

impl Lease<'_> {
    pub(crate) fn conn(&mut self) -> &mut Conn {
        // `conn` is `Some` until drop.
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }

    /// Drops this connection instead of returning it (its session may be in an
    /// unknown state).
    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.broken || conn.client.is_closed() {
            // Closed outside the lock.
            let mut state = self.pool.lock();
            state.open -= 1;
            self.pool.wake_one(state);
            drop(conn);
        } else {
            let mut state = self.pool.lock();
            state.idle.push(conn);
            self.pool.wake_one(state);
        }
    }
}
