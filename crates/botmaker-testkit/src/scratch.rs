//! Scratch directories that are removed when a test passes and kept, with their path
//! printed, when it fails: the state a failure left is the best clue to its cause.
//!
//! "Failed" means the thread is panicking when the directory is dropped (a failed
//! assertion), or the owner called [`Scratch::keep`] (a campaign that counts failures
//! instead of panicking).
//!
//! ```
//! use botmaker_testkit::scratch::Scratch;
//!
//! let dir = Scratch::new("example").unwrap();
//! std::fs::write(dir.path().join("f"), b"x").unwrap();
//! let path = dir.path().to_path_buf();
//! drop(dir); // passed: removed
//! assert!(!path.exists());
//! ```

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// A fresh 0700 directory, removed on drop unless kept.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// A new directory `botmaker-<label>-…` in the system's temporary directory.
    pub fn new(label: &str) -> io::Result<Self> {
        Self::new_in(&std::env::temp_dir(), label)
    }

    /// A new directory `botmaker-<label>-…` in `base` (the benchmark measures on the
    /// disk of `target/`, not on a tmpfs `/tmp`). Created 0700 whatever the umask,
    /// because the secrets store refuses a root that others could write to.
    pub fn new_in(base: &Path, label: &str) -> io::Result<Self> {
        for _ in 0..100 {
            let path = base.join(format!(
                "botmaker-{label}-{}-{:08x}",
                std::process::id(),
                Rng::fresh_seed() & 0xffff_ffff
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    // The umask may have taken bits away (0o277 leaves 0500): set 0700.
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| {
                            io::Error::new(e.kind(), format!("chmod 700 {}: {e}", path.display()))
                        })?;
                    return Ok(Self { path, keep: false });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("creating {}: {e}", path.display()),
                    ));
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("no free scratch directory name in {}", base.display()),
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after drop, and says where it is.
    pub fn keep(&mut self) {
        if !self.keep {
            self.keep = true;
            Self::announce(&self.path);
        }
    }

    /// Keeps the directory if `failed`, and returns `failed`: for owners that count
    /// failures rather than panic.
    pub fn keep_if(&mut self, failed: bool) -> bool {
        if failed {
            self.keep();
        }
        failed
    }

    #[allow(clippy::print_stderr)] // where a kept directory is, is the message
    fn announce(path: &Path) {
        eprintln!("scratch directory kept: {}", path.display());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep();
        }
        if !self.keep {
            // Best effort: a directory left behind in /tmp is no reason to fail a test
            // that passed.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The names in `dir`, sorted (a test compares what a directory holds before and
/// after).
///
/// # Panics
///
/// If `dir` cannot be listed: in a test, that is the failure.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
