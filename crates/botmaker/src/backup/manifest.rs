//! The manifest of a backup (`manifest.json`, written last): format, schema version,
//! creation time, and every directory and file with its size and SHA-256. Never a
//! value.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use botmaker_domain::{BotId, SecretName};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::BackupError;

/// The `format` of every manifest.
pub(crate) const FORMAT: &str = "botmaker-backup";
/// The manifest's file name in a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The registry's file name in a backup folder.
pub const REGISTRY_FILE: &str = "registry.db";
/// The folder of the secrets in a backup folder: `secrets/<bot id>/<secret name>`.
pub const SECRETS_DIR: &str = "secrets";

/// The manifest as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) format: String,
    pub(crate) format_version: u32,
    pub(crate) schema_version: u32,
    pub(crate) created_at: String,
    /// Every bot directory under `secrets/` (relative paths), sorted.
    pub(crate) dirs: Vec<String>,
    /// Every file: `registry.db` first, then the secrets, sorted.
    pub(crate) files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub(crate) path: String,
    pub(crate) size: u64,
    /// Lowercase hex.
    pub(crate) sha256: String,
}

/// What a manifest path names, once checked: nothing else may appear in one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Registry,
    BotDir(BotId),
    Secret(BotId, SecretName),
}

impl Entry {
    /// Parses a relative path of a manifest; `None` for anything a backup never holds
    /// (so `..`, absolute paths and odd names never reach the filesystem).
    pub(crate) fn parse(path: &str) -> Option<Self> {
        if path == REGISTRY_FILE {
            return Some(Self::Registry);
        }
        let rest = path.strip_prefix(SECRETS_DIR)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let id = parts.next()?;
        let bot = BotId::parse(id).ok().filter(|b| b.to_string() == id)?;
        match (parts.next(), parts.next()) {
            (None, _) => Some(Self::BotDir(bot)),
            (Some(name), None) => SecretName::parse(name).ok().map(|n| Self::Secret(bot, n)),
            _ => None,
        }
    }
}

/// `secrets/<bot>`.
pub(crate) fn bot_dir_path(bot: &BotId) -> String {
    format!("{SECRETS_DIR}/{bot}")
}

/// `secrets/<bot>/<name>`.
pub(crate) fn secret_path(bot: &BotId, name: &SecretName) -> String {
    format!("{SECRETS_DIR}/{bot}/{name}")
}

/// The largest read of [`hash_stream`].
const CHUNK: usize = 64 * 1024;

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// SHA-256 of bytes in memory.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Size and SHA-256 of an open file, read in chunks from where it stands; also copies
/// what it reads into `out` when given. `expected` (the size the caller expects) sizes
/// the buffer: a secret of a few bytes does not cost a 64 KiB buffer.
pub(crate) fn hash_stream(
    file: &mut File,
    mut out: Option<&mut File>,
    expected: u64,
) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let len = usize::try_from(expected.saturating_add(1)).map_or(CHUNK, |n| n.clamp(1, CHUNK));
    let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(out) = out.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

impl Manifest {
    /// Reads and checks the manifest of the backup at `dir`: its format, and that
    /// every path is one a backup holds, once, with its parent directory listed.
    pub(crate) fn read(dir: &Path, file: &mut File) -> Result<Self, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let invalid = |detail: String| BackupError::InvalidManifest {
            path: path.clone(),
            detail,
        };
        // A manifest of 100 000 secrets is about 20 MB; anything far larger is not one.
        let mut text = Vec::new();
        file.take(1 << 30)
            .read_to_end(&mut text)
            .map_err(|e| BackupError::io("read", &path, e))?;
        let manifest: Self =
            serde_json::from_slice(&text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        if manifest.format != FORMAT {
            return Err(invalid(format!(
                "format is {:?}, not {FORMAT:?}",
                manifest.format
            )));
        }
        if manifest.format_version != super::FORMAT_VERSION {
            return Err(BackupError::UnsupportedFormat {
                path,
                version: manifest.format_version,
                supported: super::FORMAT_VERSION,
            });
        }
        let mut dirs = std::collections::HashSet::new();
        for d in &manifest.dirs {
            if !matches!(Entry::parse(d), Some(Entry::BotDir(_))) || !dirs.insert(d.as_str()) {
                return Err(invalid(format!("unexpected or repeated directory {d:?}")));
            }
        }
        let mut files = std::collections::HashSet::new();
        let mut registry = false;
        for f in &manifest.files {
            let ok = match Entry::parse(&f.path) {
                Some(Entry::Registry) => {
                    registry = true;
                    true
                }
                Some(Entry::Secret(bot, _)) => dirs.contains(bot_dir_path(&bot).as_str()),
                _ => false,
            };
            let hash_ok = f.sha256.len() == 64
                && f.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !ok || !hash_ok || !files.insert(f.path.as_str()) {
                return Err(invalid(format!("unexpected or repeated file {:?}", f.path)));
            }
        }
        if !registry {
            return Err(invalid(format!("{REGISTRY_FILE} is not listed")));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_a_backup_holds_parse() {
        let id = BotId::generate();
        assert_eq!(Entry::parse("registry.db"), Some(Entry::Registry));
        assert_eq!(
            Entry::parse(&format!("secrets/{id}")),
            Some(Entry::BotDir(id))
        );
        assert!(matches!(
            Entry::parse(&format!("secrets/{id}/ai_api_key")),
            Some(Entry::Secret(..))
        ));
        for bad in [
            String::new(),
            "/registry.db".to_owned(),
            "secrets".to_owned(),
            "secrets/".to_owned(),
            format!("secrets/{id}/../x"),
            format!("secrets/{id}/a/b"),
            format!("secrets/{id}/.tmp-x"),
            format!("secrets/{}", id.to_string().to_uppercase()),
            "secrets/../../etc/passwd".to_owned(),
            "manifest.json".to_owned(),
        ] {
            assert_eq!(Entry::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn hex_is_lowercase_sha256() {
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
