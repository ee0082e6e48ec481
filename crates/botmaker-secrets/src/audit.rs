//! Checking (and carefully repairing) the store's modes, owners and entries: a walk
//! over the root and every bot directory that asks each module for its rules (the root's
//! owners, a bot directory's mode, the secret file policy) and only reports what they
//! say, so the audit cannot disagree with the operations it audits.

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use botmaker_domain::SecretName;
use nix::errno::Errno;
use nix::unistd::fsync;

use crate::bot_dir::{self, QUARANTINE_DIR, TRASH_PREFIX, canonical_bot_id, is_stale_trash};
use crate::fsutil::{Kind, Meta, list_names};
use crate::lock::LOCK_FILE;
use crate::root::{DIR_MODE, Root};
use crate::root_id::ROOT_ID_FILE;
use crate::secret_file::{self, FILE_MODE, FilePolicy};
use crate::{Result, SecretsError};

/// What is wrong with one entry of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Issue {
    /// Permission bits the store does not accept: directories must be `0700`, secret
    /// files `0600` or `0400` (`expected` is the mode the repair sets).
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

/// One finding of [`SecretsStore::audit`](crate::SecretsStore::audit) or
/// [`SecretsStore::repair`](crate::SecretsStore::repair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The entry, relative to the root (`.` is the root itself; `<id>/<name>`).
    pub path: String,
    /// What is wrong.
    pub issue: Issue,
    /// Whether [`repair`](crate::SecretsStore::repair) fixed it.
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

/// Walks the store (the root, then its entries sorted by name, each bot directory's
/// entries sorted by name) and reports drift; with `repair`, fixes what is safe.
pub(crate) fn walk(root: &Root, policy: FilePolicy, repair: bool) -> Result<AuditReport> {
    let mut report = AuditReport::default();
    let fd = root.fd();
    let meta =
        Meta::of_fd(fd).map_err(|e| SecretsError::io("stat", root.path().to_path_buf(), e))?;
    if !root.root_owner_ok(meta.uid) {
        report.push(
            ".",
            Issue::WrongOwner {
                uid: meta.uid,
                expected: root.expected_uid(),
            },
            false,
        );
    }
    // Open does not refuse a root readable by others (StrictModes only minds
    // writable), but the audit wants exactly 0700.
    if meta.perm != DIR_MODE {
        let fixed = repair && root.repair_mode(&meta);
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
        list_names(fd).map_err(|e| SecretsError::io("list", root.path().to_path_buf(), e))?;
    for raw in names {
        let shown = raw.to_string_lossy().into_owned();
        let entry = match Meta::of_entry(fd, &raw) {
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
        } else if raw == LOCK_FILE {
            // The advisory lock of the cross-store operations: expected, and never
            // removed (a holder may be waiting on it). Only its type is checked.
            match entry.kind {
                Kind::File => {}
                Kind::Symlink => report.push(&shown, Issue::Symlink, false),
                other => report.push(
                    &shown,
                    Issue::NotRegularFile {
                        kind: other.describe(),
                    },
                    false,
                ),
            }
        } else if raw == ROOT_ID_FILE {
            // The root's identity: expected, judged like a secret file (type, owner,
            // mode, links; the repair may set its mode to 0600), never removed.
            audit_secret(root, policy, fd, &raw, &shown, repair, &mut report);
        } else if secret_file::is_temp(&shown) {
            // A temporary file of the id file's creation (see `root_id`).
            if secret_file::is_leftover_temp(&shown) {
                let fixed = repair && secret_file::remove_temp(fd, &raw);
                report.push(&shown, Issue::LeftoverTemp, fixed);
            }
        } else if shown.starts_with(TRASH_PREFIX) {
            // The trash of a deletion still running elsewhere is not a leftover.
            if is_stale_trash(&shown) {
                let fixed = repair && bot_dir::remove_trash(root, &raw).is_ok();
                report.push(&shown, Issue::LeftoverTrash, fixed);
            }
        } else if canonical_bot_id(&raw).is_some() {
            match entry.kind {
                Kind::Dir => walk_bot(root, policy, &raw, &shown, repair, &mut report),
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
        let _ = fsync(fd);
    }
    Ok(report)
}

fn walk_bot(
    root: &Root,
    policy: FilePolicy,
    raw: &OsStr,
    shown: &str,
    repair: bool,
    report: &mut AuditReport,
) {
    let unreadable = |report: &mut AuditReport, e: Errno| {
        report.push(
            shown,
            Issue::Unreadable {
                error: e.desc().to_owned(),
            },
            false,
        );
    };
    let dir = match bot_dir::open_entry(root, raw) {
        Ok(fd) => fd,
        Err(e) => return unreadable(report, e),
    };
    let dfd = dir.as_fd();
    let meta = match Meta::of_fd(dfd) {
        Ok(m) => m,
        Err(e) => return unreadable(report, e),
    };
    if meta.uid != root.expected_uid() {
        report.push(
            shown,
            Issue::WrongOwner {
                uid: meta.uid,
                expected: root.expected_uid(),
            },
            false,
        );
    }
    if meta.kind == Kind::Dir && !bot_dir::mode_ok(&meta) {
        let fixed = repair && bot_dir::repair_mode(root, dfd, &meta);
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
        Err(e) => return unreadable(report, e),
    };
    let mut changed = false;
    for entry_raw in names {
        let name = entry_raw.to_string_lossy();
        let path = format!("{shown}/{name}");
        if secret_file::is_temp(&name) {
            if secret_file::is_leftover_temp(&name) {
                let fixed = repair && secret_file::remove_temp(dfd, &entry_raw);
                changed |= fixed;
                report.push(&path, Issue::LeftoverTemp, fixed);
            }
            continue;
        }
        if SecretName::parse(&name).is_err() {
            report.push(&path, Issue::UnexpectedEntry, false);
            continue;
        }
        audit_secret(root, policy, dfd, &entry_raw, &path, repair, report);
    }
    if changed {
        let _ = fsync(dfd);
    }
}

/// Reports what the file policy finds wrong with one secret file, one finding per
/// point, and with `repair` fixes its mode where the policy allows it.
fn audit_secret(
    root: &Root,
    policy: FilePolicy,
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
    let verdict = policy.judge(&m);
    match verdict.not_regular {
        None => {}
        Some(Kind::Symlink) => return report.push(path, Issue::Symlink, false),
        Some(other) => {
            return report.push(
                path,
                Issue::NotRegularFile {
                    kind: other.describe(),
                },
                false,
            );
        }
    }
    // A listed entry always has a link; 0 would mean it went since the listing.
    match verdict.links {
        Some(0) => return,
        Some(nlink) => report.push(path, Issue::HardLinked { nlink }, false),
        None => {}
    }
    if let Some(uid) = verdict.wrong_owner {
        report.push(
            path,
            Issue::WrongOwner {
                uid,
                expected: policy.expected_uid(),
            },
            false,
        );
    }
    if let Some(size) = verdict.too_large {
        report.push(
            path,
            Issue::TooLarge {
                size,
                max: policy.max(),
            },
            false,
        );
    }
    if let Some(mode) = verdict.bad_mode {
        let fixed = repair
            && verdict.mode_is_repairable()
            && secret_file::repair_mode(root, policy, dfd, entry_raw, &m);
        report.push(
            path,
            Issue::WrongMode {
                mode,
                expected: FILE_MODE,
            },
            fixed,
        );
    }
}

impl AuditReport {
    fn push(&mut self, path: &str, issue: Issue, repaired: bool) {
        // Drift is a warning; a repair is news (info). The path is relative to the
        // root; the issue names modes, owners and kinds, never a file's content.
        if repaired {
            tracing::info!(path, issue = %issue, "secrets store entry repaired");
        } else {
            tracing::warn!(path, issue = %issue, "secrets store drift");
        }
        self.findings.push(Finding {
            path: path.to_owned(),
            issue,
            repaired,
        });
    }
}
