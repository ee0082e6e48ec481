//! Checking (and carefully repairing) the store's modes, owners and entries.

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use botmaker_domain::SecretName;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use crate::fsutil::{
    Kind, Meta, QUARANTINE_DIR, TEMP_PREFIX, TRASH_PREFIX, is_stale, is_stale_trash, list_names,
    remove_tree,
};
use crate::store::{DIR_MODE, FILE_MODE, canonical_bot_id};
use crate::{Result, SecretsError, SecretsStore};

/// What is wrong with one entry of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Issue {
    /// Permission bits differ from the store's (`0700` directories, `0600` files).
    WrongMode {
        /// The bits found.
        mode: u32,
        /// The bits expected.
        expected: u32,
    },
    /// Owned by another user than the store expects.
    WrongOwner {
        /// The owner found.
        uid: u32,
        /// The owner expected.
        expected: u32,
    },
    /// A symlink: never followed, never "fixed"; remove it by hand.
    Symlink,
    /// Not a regular file where a secret is expected.
    NotRegularFile {
        /// What it is.
        kind: &'static str,
    },
    /// Not a directory where a bot directory is expected.
    NotADirectory {
        /// What it is.
        kind: &'static str,
    },
    /// A secret file with more than one hard link.
    HardLinked {
        /// Its link count.
        nlink: u64,
    },
    /// A secret file over the size cap.
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// A name that is neither a canonical bot id (in the root) nor a secret name (in a
    /// bot directory).
    UnexpectedEntry,
    /// A temporary file left by an interrupted write.
    LeftoverTemp,
    /// A trash directory left by an interrupted bot deletion.
    LeftoverTrash,
    /// The entry could not be inspected.
    Unreadable {
        /// The operating system's error.
        error: String,
    },
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongMode { mode, expected } => {
                write!(f, "mode {mode:04o}, expected {expected:04o}")
            }
            Self::WrongOwner { uid, expected } => {
                write!(f, "owned by uid {uid}, expected uid {expected}")
            }
            Self::Symlink => {
                f.write_str("symlink (never followed; check it and remove it by hand)")
            }
            Self::NotRegularFile { kind } => write!(f, "a {kind}, expected a regular file"),
            Self::NotADirectory { kind } => write!(f, "a {kind}, expected a bot directory"),
            Self::HardLinked { nlink } => write!(f, "{nlink} hard links, expected 1"),
            Self::TooLarge { size, max } => {
                write!(f, "{size} bytes, over the limit of {max} bytes")
            }
            Self::UnexpectedEntry => f.write_str("unexpected entry (not a bot id or secret name)"),
            Self::LeftoverTemp => f.write_str("leftover temporary file of an interrupted write"),
            Self::LeftoverTrash => f.write_str("leftover of an interrupted bot deletion"),
            Self::Unreadable { error } => write!(f, "cannot inspect: {error}"),
        }
    }
}

/// One finding of [`SecretsStore::audit`] or [`SecretsStore::repair`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The entry, relative to the root (`.` is the root itself; `<id>/<name>`).
    pub path: String,
    /// What is wrong.
    pub issue: Issue,
    /// Whether [`repair`](SecretsStore::repair) fixed it.
    pub repaired: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.issue)?;
        if self.repaired {
            f.write_str(" (repaired)")?;
        }
        Ok(())
    }
}

/// The findings of an audit, in walk order (root, then entries sorted by name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Every drift found.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// No findings at all.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings that were not repaired (and need an operator).
    pub fn unrepaired(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.repaired)
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.findings.is_empty() {
            return f.write_str("secrets store is clean");
        }
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{finding}")?;
        }
        Ok(())
    }
}

impl SecretsStore {
    /// Walks the store and reports drift: modes, owners, symlinks, special files,
    /// hard links, oversized files, unexpected names, leftovers. Changes nothing.
    pub fn audit(&self) -> Result<AuditReport> {
        self.walk(false)
    }

    /// Like [`audit`](Self::audit), and fixes what is safe to fix: permission bits
    /// (with `fchmod` on a descriptor opened without following links, after `fstat`
    /// shows a directory, or a regular file with one link, owned by the expected
    /// owner) and leftover temporary and trash entries. Symlinks, owners, hard links
    /// and unexpected entries are only reported.
    pub fn repair(&self) -> Result<AuditReport> {
        self.walk(true)
    }

    fn walk(&self, repair: bool) -> Result<AuditReport> {
        let mut report = AuditReport::default();
        let root = self.root.as_fd();
        let meta =
            Meta::of_fd(root).map_err(|e| SecretsError::io("stat", self.root_path.clone(), e))?;
        let ours = |uid: u32| uid == self.euid || uid == self.expected_uid;
        if !(ours(meta.uid) || meta.uid == 0) {
            report.push(
                ".",
                Issue::WrongOwner {
                    uid: meta.uid,
                    expected: self.expected_uid,
                },
                false,
            );
        }
        if meta.perm != DIR_MODE {
            let fixed = repair
                && ours(meta.uid)
                && fchmod(root, Mode::from_bits_truncate(DIR_MODE)).is_ok();
            report.push(
                ".",
                Issue::WrongMode {
                    mode: meta.perm,
                    expected: DIR_MODE,
                },
                fixed,
            );
        }
        let names =
            list_names(root).map_err(|e| SecretsError::io("list", self.root_path.clone(), e))?;
        for raw in names {
            let shown = raw.to_string_lossy().into_owned();
            let entry = match Meta::of_entry(root, &raw) {
                Ok(m) => m,
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    report.push(
                        &shown,
                        Issue::Unreadable {
                            error: e.desc().to_owned(),
                        },
                        false,
                    );
                    continue;
                }
            };
            if raw == QUARANTINE_DIR {
                if entry.kind == Kind::Symlink {
                    report.push(&shown, Issue::Symlink, false);
                } else if entry.kind != Kind::Dir {
                    report.push(
                        &shown,
                        Issue::NotADirectory {
                            kind: entry.kind.describe(),
                        },
                        false,
                    );
                }
            } else if shown.starts_with(TRASH_PREFIX) {
                // The trash of a deletion still running elsewhere is not a leftover.
                if is_stale_trash(&shown) {
                    let fixed = repair && remove_tree(self.resolver, root, &raw, 0).is_ok();
                    report.push(&shown, Issue::LeftoverTrash, fixed);
                }
            } else if canonical_bot_id(&raw).is_some() {
                match entry.kind {
                    Kind::Dir => self.walk_bot(&raw, &shown, repair, &mut report),
                    Kind::Symlink => report.push(&shown, Issue::Symlink, false),
                    other => report.push(
                        &shown,
                        Issue::NotADirectory {
                            kind: other.describe(),
                        },
                        false,
                    ),
                }
            } else {
                report.push(&shown, Issue::UnexpectedEntry, false);
            }
        }
        if repair && report.findings.iter().any(|f| f.repaired) {
            let _ = fsync(root);
        }
        Ok(report)
    }

    fn walk_bot(&self, raw: &OsStr, shown: &str, repair: bool, report: &mut AuditReport) {
        let dir = match self.resolver.open_dir(self.root.as_fd(), &[raw]) {
            Ok(fd) => fd,
            Err(e) => {
                report.push(
                    shown,
                    Issue::Unreadable {
                        error: e.desc().to_owned(),
                    },
                    false,
                );
                return;
            }
        };
        let dfd = dir.as_fd();
        let meta = match Meta::of_fd(dfd) {
            Ok(m) => m,
            Err(e) => {
                report.push(
                    shown,
                    Issue::Unreadable {
                        error: e.desc().to_owned(),
                    },
                    false,
                );
                return;
            }
        };
        let owned = meta.uid == self.expected_uid;
        if !owned {
            report.push(
                shown,
                Issue::WrongOwner {
                    uid: meta.uid,
                    expected: self.expected_uid,
                },
                false,
            );
        }
        if meta.kind == Kind::Dir && meta.perm != DIR_MODE {
            let fixed = repair && owned && fchmod(dfd, Mode::from_bits_truncate(DIR_MODE)).is_ok();
            report.push(
                shown,
                Issue::WrongMode {
                    mode: meta.perm,
                    expected: DIR_MODE,
                },
                fixed,
            );
        }
        let names = match list_names(dfd) {
            Ok(n) => n,
            Err(e) => {
                report.push(
                    shown,
                    Issue::Unreadable {
                        error: e.desc().to_owned(),
                    },
                    false,
                );
                return;
            }
        };
        let mut changed = false;
        for entry_raw in names {
            let name = entry_raw.to_string_lossy();
            let path = format!("{shown}/{name}");
            if name.starts_with(TEMP_PREFIX) {
                if is_stale(&name, TEMP_PREFIX) {
                    let fixed = repair
                        && unlinkat(dfd, entry_raw.as_os_str(), UnlinkatFlags::NoRemoveDir).is_ok();
                    changed |= fixed;
                    report.push(&path, Issue::LeftoverTemp, fixed);
                }
                continue;
            }
            if SecretName::parse(&name).is_err() {
                report.push(&path, Issue::UnexpectedEntry, false);
                continue;
            }
            self.audit_secret(dfd, &entry_raw, &path, repair, report);
        }
        if changed {
            let _ = fsync(dfd);
        }
    }

    fn audit_secret(
        &self,
        dfd: BorrowedFd<'_>,
        entry_raw: &OsStr,
        path: &str,
        repair: bool,
        report: &mut AuditReport,
    ) {
        let m = match Meta::of_entry(dfd, entry_raw) {
            Ok(m) => m,
            Err(Errno::ENOENT) => return,
            Err(e) => {
                report.push(
                    path,
                    Issue::Unreadable {
                        error: e.desc().to_owned(),
                    },
                    false,
                );
                return;
            }
        };
        match m.kind {
            Kind::File => {}
            Kind::Symlink => {
                report.push(path, Issue::Symlink, false);
                return;
            }
            other => {
                report.push(
                    path,
                    Issue::NotRegularFile {
                        kind: other.describe(),
                    },
                    false,
                );
                return;
            }
        }
        if m.nlink != 1 {
            report.push(path, Issue::HardLinked { nlink: m.nlink }, false);
        }
        if m.uid != self.expected_uid {
            report.push(
                path,
                Issue::WrongOwner {
                    uid: m.uid,
                    expected: self.expected_uid,
                },
                false,
            );
        }
        if m.size > self.max as u64 {
            report.push(
                path,
                Issue::TooLarge {
                    size: m.size,
                    max: self.max,
                },
                false,
            );
        }
        if m.perm != FILE_MODE {
            let fixed = repair
                && m.nlink == 1
                && m.uid == self.expected_uid
                && self.fix_file_mode(dfd, entry_raw, &m);
            report.push(
                path,
                Issue::WrongMode {
                    mode: m.perm,
                    expected: FILE_MODE,
                },
                fixed,
            );
        }
    }

    /// `fchmod 0600` on the file, opened without following a link and re-checked with
    /// `fstat` (same inode, regular, owned by us, one link).
    fn fix_file_mode(&self, dir: BorrowedFd<'_>, name: &OsStr, seen: &Meta) -> bool {
        let Ok(fd) = self.resolver.open(
            dir,
            &[name],
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        ) else {
            return false;
        };
        let Ok(now) = Meta::of_fd(fd.as_fd()) else {
            return false;
        };
        now.kind == Kind::File
            && now.dev == seen.dev
            && now.ino == seen.ino
            && now.uid == self.expected_uid
            && now.nlink == 1
            && fchmod(&fd, Mode::from_bits_truncate(FILE_MODE)).is_ok()
    }
}

impl AuditReport {
    fn push(&mut self, path: &str, issue: Issue, repaired: bool) {
        self.findings.push(Finding {
            path: path.to_owned(),
            issue,
            repaired,
        });
    }
}
