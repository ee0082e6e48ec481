//! A bound on how long a test may run: a hang (a lost wake-up, a loop that never ends)
//! fails the test, naming what hung, instead of running until a harness gives up (and
//! cargo-mutants counts a mutant that hangs a test as a timeout, not as caught).
//!
//! ```
//! use std::time::Duration;
//! use botmaker_testkit::watchdog::Watchdog;
//!
//! let _bound = Watchdog::new(Duration::from_secs(60), "the example");
//! // ... the test's work; dropping the watchdog ends the bound.
//! ```

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

/// Ends the test's process with a failure, saying what hung, if it is not dropped
/// within its limit. Each test runs in a process of its own under nextest, so that
/// ends one test; under `cargo test` it ends the others too, which a hang would
/// have stopped anyway.
#[derive(Debug)]
pub struct Watchdog {
    _done: Sender<()>,
}

impl Watchdog {
    /// Starts the bound: `what` (for the message) must finish within `limit`.
    pub fn new(limit: Duration, what: &str) -> Self {
        let (done, wait) = mpsc::channel::<()>();
        let what = what.to_owned();
        thread::spawn(move || {
            // Dropping the watchdog drops the sender: Disconnected, in time.
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                #[allow(clippy::print_stderr)] // the message is the test's failure
                {
                    eprintln!(
                        "FAIL: {what} did not finish within {limit:?}: a hang (a lost \
                         wake-up, an endless loop) is a failure, not a slow test"
                    );
                }
                std::process::exit(101);
            }
        });
        Self { _done: done }
    }
}
