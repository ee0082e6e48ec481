//! One seeded random generator for every campaign and randomised test.
//!
//! The stream comes from rand's `Xoshiro256PlusPlus`, named rather than `SmallRng`
//! because rand documents `SmallRng`'s algorithm as free to change between versions,
//! and a printed seed must replay the same choices for as long as the lock file stays.
//! The methods are the few shapes of choice the tests make (a number below a bound, a
//! per-mille chance, an element of a slice), so each call site reads as its intent.
//!
//! ```
//! use botmaker_testkit::rng::Rng;
//!
//! let seed = Rng::seed_from_env("MY_TEST_SEED"); // printed, with how to replay it
//! let mut rng = Rng::new(seed);
//! let roll = rng.below(100);
//! assert!(roll < 100);
//! let mut same = Rng::new(seed);
//! assert_eq!(same.below(100), roll);
//! ```

use rand::rngs::{SysRng, Xoshiro256PlusPlus};
use rand::{RngExt as _, SeedableRng as _, TryRng as _};

/// A seeded generator for test choices (never for secrets: it is predictable by design).
#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// The generator that seed `seed` names: the same seed, the same choices.
    pub fn new(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// A seed for a run nobody asked to replay: from the operating system, or (should
    /// that fail) the clock and the process id, so two processes started together
    /// still differ.
    pub fn fresh_seed() -> u64 {
        SysRng.try_next_u64().unwrap_or_else(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs()
                ^ u64::from(now.subsec_nanos()) << 20
                ^ u64::from(std::process::id()) << 44
        })
    }

    /// The seed in environment variable `var`, else a [`fresh_seed`](Self::fresh_seed).
    /// Printed on stderr with the variable that replays it, because a randomised test
    /// that fails is only useful if its run can be repeated.
    pub fn seed_from_env(var: &str) -> u64 {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(Self::fresh_seed);
        #[allow(clippy::print_stderr)] // the replay hint is the point
        {
            eprintln!("seed {seed} (set {var}={seed} to replay)");
        }
        seed
    }

    /// The next raw 64 bits (for seeds of children and for values).
    pub fn next_u64(&mut self) -> u64 {
        self.0.random()
    }

    /// A number in `0..n` (`0` when `n` is 0, so callers need no guard).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.random_range(0..n) }
    }

    /// An index into a slice of `len` elements (`0` when `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            self.0.random_range(0..len)
        }
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One element of a slice.
    ///
    /// # Panics
    ///
    /// If `items` is empty: a caller's mistake, not an input.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// One random byte.
    pub fn byte(&mut self) -> u8 {
        self.0.random()
    }

    /// A new generator whose stream is independent of this one's next values, so each
    /// part of a campaign consumes its own stream and adding draws to one part does not
    /// shift the choices of the next.
    #[must_use = "a fork that is not used only advances this generator"]
    pub fn fork(&mut self) -> Self {
        Self::new(self.next_u64())
    }
}
