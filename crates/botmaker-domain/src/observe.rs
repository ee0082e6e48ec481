//! The span conventions every crate of the workspace follows (issue 12), in one place.
//!
//! Each store and facade operation runs inside one span made by [`op_span!`](crate::op_span):
//! its name and `op` field are the operation (`"create"`, `"write"`…), `backend` says
//! which store answered (`"sqlite"`, `"memory"`, `"fs"`), `bot_id` the bot when there is
//! one, and [`run`] records `outcome` (`"ok"` or `"error"`) and `elapsed_us` when the
//! operation ends. Spans are at `DEBUG`; the target is the calling module, so
//! `RUST_LOG=botmaker_sqlite=debug` selects one crate.
//!
//! Fields are structured values (ids, names, counts), never a formatted sentence, and
//! **never a secret value**: the secrets crate passes bot ids and secret names only,
//! and its error messages (recorded on failure) never hold a value either.
//!
//! `tracing` without a subscriber is a few relaxed atomic loads per call: the crates
//! emit unconditionally and the application chooses (the CLI prints to stderr).

use std::fmt::Display;
use std::time::Instant;

use tracing::Span;

#[doc(hidden)]
pub mod __private {
    pub use tracing;
}

/// A `DEBUG` span for one operation, with the conventional fields of
/// [`observe`](crate::observe): `op` and `backend` set, `outcome` and `elapsed_us` empty
/// until [`run`] records them, and `bot_id` set when a bot id is given (`bot_id = id`,
/// rendered with `Display`, its canonical form).
///
/// ```
/// use botmaker_domain::{BotId, op_span, observe};
///
/// let id = BotId::generate();
/// let done: Result<u8, std::fmt::Error> =
///     observe::run(op_span!("get", "memory", bot_id = id), || Ok(1));
/// assert_eq!(done, Ok(1));
/// ```
#[macro_export]
macro_rules! op_span {
    ($op:literal, $backend:expr, bot_id = $bot:expr) => {
        $crate::observe::__private::tracing::debug_span!(
            $op,
            op = $op,
            backend = $backend,
            bot_id = %$bot,
            outcome = $crate::observe::__private::tracing::field::Empty,
            elapsed_us = $crate::observe::__private::tracing::field::Empty,
        )
    };
    ($op:literal, $backend:expr) => {
        $crate::observe::__private::tracing::debug_span!(
            $op,
            op = $op,
            backend = $backend,
            bot_id = $crate::observe::__private::tracing::field::Empty,
            outcome = $crate::observe::__private::tracing::field::Empty,
            elapsed_us = $crate::observe::__private::tracing::field::Empty,
        )
    };
}

/// Runs `f` inside `span`, then records its `outcome` and `elapsed_us`; a failure also
/// emits a `DEBUG` event with the error's message (which, by the workspace's rule,
/// names the offending input and never a secret value).
#[allow(clippy::needless_pass_by_value)] // the span is made for this one call: taking it
// by value keeps every call site a single expression
pub fn run<T, E: Display>(span: Span, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let _entered = span.enter();
    let start = Instant::now();
    let result = f();
    span.record(
        "elapsed_us",
        u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    match &result {
        Ok(_) => {
            span.record("outcome", "ok");
        }
        Err(e) => {
            span.record("outcome", "error");
            tracing::debug!(error = %e, "operation failed");
        }
    }
    result
}
