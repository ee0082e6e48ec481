//! Checking a backup folder against its manifest: every folder and file present, a
//! real folder or regular file (never a symlink), every size and SHA-256 equal, and
//! nothing else there.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use botmaker_sqlite::{LATEST_VERSION, SchemaState};

use super::manifest::{self, MANIFEST_FILE, Manifest, REGISTRY_FILE, SECRETS_DIR};
use super::{BackupError, Phase, Progress};
use crate::Result;

/// What [`verify_backup`] found: a backup whose every file matches its manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// When the backup was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The registry's schema version.
    pub schema_version: u32,
    /// Whether that schema is older than this code's (a restore then migrates).
    pub needs_migration: bool,
    /// The bots with a secrets folder.
    pub bots: usize,
    /// The secret files.
    pub secrets: usize,
    /// Bytes in all files.
    pub bytes: u64,
}

/// Checks the backup at `dir` without restoring it: the manifest (a folder without
/// one is [`BackupError::Incomplete`]), then every folder and file it lists (a real
/// folder or a regular file, never a symlink; the size and the SHA-256), then that
/// nothing else is there, then the registry's schema (a schema newer than this code
/// is [`BackupError::SchemaTooNew`]). The first difference is
/// [`BackupError::Damaged`], naming the file. Reads only.
///
/// `progress` is called after each file.
pub fn verify_backup(dir: &Path, progress: impl FnMut(Progress)) -> Result<VerifyReport> {
    verify(dir, progress).map(|(report, _)| report)
}

/// [`verify_backup`], also returning the manifest for the restore.
pub(crate) fn verify(
    dir: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<(VerifyReport, Manifest)> {
    let damaged = |file: &str, detail: &str| BackupError::Damaged {
        dir: dir.to_owned(),
        file: file.to_owned(),
        detail: detail.to_owned(),
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(damaged(".", "not a folder").into()),
        Err(e) => return Err(BackupError::io("open", dir, e).into()),
    }
    let mut file = match open_regular(dir, MANIFEST_FILE) {
        Ok(file) => file,
        Err(Open::Missing) => {
            return Err(BackupError::Incomplete {
                path: dir.to_owned(),
            }
            .into());
        }
        Err(Open::Bad(detail)) => return Err(damaged(MANIFEST_FILE, detail).into()),
        Err(Open::Io(e)) => return Err(BackupError::io("open", &dir.join(MANIFEST_FILE), e).into()),
    };
    let manifest = Manifest::read(dir, &mut file)?;
    drop(file);

    // Folders first, so that no file below is reached through a symlink.
    for d in std::iter::once(SECRETS_DIR).chain(manifest.dirs.iter().map(String::as_str)) {
        match fs::symlink_metadata(dir.join(d)) {
            Ok(m) if m.file_type().is_symlink() => return Err(damaged(d, "is a symlink").into()),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(damaged(d, "is not a folder").into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(damaged(d, "is missing").into());
            }
            Err(e) => return Err(BackupError::io("stat", &dir.join(d), e).into()),
        }
    }
    let total = manifest.files.len();
    let mut bytes = 0u64;
    for (i, entry) in manifest.files.iter().enumerate() {
        let mut file = match open_regular(dir, &entry.path) {
            Ok(file) => file,
            Err(Open::Missing) => return Err(damaged(&entry.path, "is missing").into()),
            Err(Open::Bad(detail)) => return Err(damaged(&entry.path, detail).into()),
            Err(Open::Io(e)) => {
                return Err(BackupError::io("open", &dir.join(&entry.path), e).into());
            }
        };
        let (size, sha256) = manifest::hash_stream(&mut file, None, entry.size)
            .map_err(|e| BackupError::io("read", &dir.join(&entry.path), e))?;
        if size != entry.size {
            let detail = format!("size is {size} bytes, the manifest says {}", entry.size);
            return Err(damaged(&entry.path, &detail).into());
        }
        if sha256 != entry.sha256 {
            return Err(damaged(&entry.path, "SHA-256 differs from the manifest").into());
        }
        bytes += size;
        progress(Progress {
            phase: Phase::Verify,
            done: i + 1,
            total,
        });
    }
    check_nothing_else(dir, &manifest)?;

    let status = botmaker_sqlite::migration_status(&dir.join(REGISTRY_FILE))?;
    if status.db_version != manifest.schema_version {
        let detail = format!(
            "schema version is {}, the manifest says {}",
            status.db_version, manifest.schema_version
        );
        return Err(damaged(REGISTRY_FILE, &detail).into());
    }
    let needs_migration = match status.state {
        SchemaState::UpToDate => false,
        SchemaState::Pending => true,
        SchemaState::TooNew => {
            return Err(BackupError::SchemaTooNew {
                path: dir.to_owned(),
                backup: status.db_version,
                code: LATEST_VERSION,
            }
            .into());
        }
        other => {
            return Err(damaged(REGISTRY_FILE, &format!("schema state: {other:?}")).into());
        }
    };
    Ok((
        VerifyReport {
            created_at: manifest.created_at.clone(),
            schema_version: manifest.schema_version,
            needs_migration,
            bots: manifest.dirs.len(),
            secrets: total - 1,
            bytes,
        },
        manifest,
    ))
}

/// Why a file could not be opened as a regular one.
pub(crate) enum Open {
    Missing,
    Bad(&'static str),
    Io(io::Error),
}

/// Opens `dir/rel` for reading: never through a symlink at its last component (the
/// folders above it were checked), and only a regular file.
pub(crate) fn open_regular(dir: &Path, rel: &str) -> Result<File, Open> {
    let path = dir.join(rel);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Open::Missing),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Open::Bad("is a symlink"));
        }
        Err(e) => return Err(Open::Io(e)),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(Open::Bad("is not a regular file")),
        Err(e) => Err(Open::Io(e)),
    }
}

/// Refuses anything in the folder that the manifest does not list.
fn check_nothing_else(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let listed: HashSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(manifest.dirs.iter().map(String::as_str))
        .chain([MANIFEST_FILE, SECRETS_DIR])
        .collect();
    let extra = |rel: String| BackupError::Damaged {
        dir: dir.to_owned(),
        file: rel,
        detail: "is not in the manifest".to_owned(),
    };
    let names = |rel: &str| -> Result<Vec<String>, BackupError> {
        let path = if rel.is_empty() {
            dir.to_owned()
        } else {
            dir.join(rel)
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| BackupError::io("list", &path, e))? {
            let entry = entry.map_err(|e| BackupError::io("list", &path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push(if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            });
        }
        out.sort();
        Ok(out)
    };
    for top in names("")? {
        if !listed.contains(top.as_str()) {
            return Err(extra(top));
        }
    }
    for bot in names(SECRETS_DIR)? {
        if !listed.contains(bot.as_str()) {
            return Err(extra(bot));
        }
        for file in names(&bot)? {
            if !listed.contains(file.as_str()) {
                return Err(extra(file));
            }
        }
    }
    Ok(())
}
