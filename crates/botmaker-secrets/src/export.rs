//! Reading a whole bot directory for a backup: [`BotExport`] holds one descriptor of
//! the directory, lists its secrets, reads them one at a time with the store's read
//! checks, and finally says whether that directory is still the bot's (a concurrent
//! delete renames it to a trash name first, so a copy taken from it is dropped).

use std::os::fd::{AsFd, OwnedFd};

use botmaker_domain::{BotId, SecretName};

use crate::bot_dir::{self, DirUse};
use crate::fsutil::{Kind, Meta, list_names};
use crate::root::Root;
use crate::secret_file::{self, FilePolicy};
use crate::{Result, SecretValue, SecretsError};

/// One bot directory opened for export by [`SecretsStore::export_bot`]: its secrets'
/// names, each secret read with the same checks as
/// [`SecretsStore::read`](crate::SecretsStore::read), and [`is_current`]: whether the
/// directory read from is still at the bot's name.
///
/// Every read is relative to the one descriptor opened at the start (without following
/// a symlink), so every value comes from the same directory, and each value is one
/// whole write (writes are atomic renames).
///
/// [`SecretsStore::export_bot`]: crate::SecretsStore::export_bot
/// [`is_current`]: BotExport::is_current
#[derive(Debug)]
pub struct BotExport<'s> {
    root: &'s Root,
    policy: FilePolicy,
    bot: BotId,
    dir: OwnedFd,
    dev: u64,
    ino: u64,
    names: Vec<SecretName>,
}

/// Opens the bot's directory for export; `Ok(None)` when the bot has no directory.
pub(crate) fn open<'s>(
    root: &'s Root,
    policy: FilePolicy,
    bot: &BotId,
) -> Result<Option<BotExport<'s>>> {
    let dir = match bot_dir::open(root, bot, DirUse::Read) {
        Err(SecretsError::BotNotFound { .. }) => return Ok(None),
        other => other?,
    };
    let path = || root.display_path(bot, None);
    let meta = Meta::of_fd(dir.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
    let raw = list_names(dir.as_fd()).map_err(|e| SecretsError::io("list", path(), e))?;
    // Temporary files and foreign names are not secrets (the audit reports the
    // latter). Anything else under a secret's name (a symlink, a directory, a FIFO) is
    // kept: its read refuses it, naming it, as a read of the live store would.
    let names = raw
        .iter()
        .filter_map(|entry| entry.to_str().and_then(|s| SecretName::parse(s).ok()))
        .collect();
    Ok(Some(BotExport {
        root,
        policy,
        bot: *bot,
        dir,
        dev: meta.dev,
        ino: meta.ino,
        names,
    }))
}

impl BotExport<'_> {
    /// The bot.
    pub fn bot(&self) -> &BotId {
        &self.bot
    }

    /// The secrets' names, sorted, as listed when the directory was opened.
    pub fn names(&self) -> &[SecretName] {
        &self.names
    }

    /// Reads one secret from the opened directory, with the checks of
    /// [`SecretsStore::read`](crate::SecretsStore::read) (regular file, owner, mode,
    /// one link, size cap). `Ok(None)` when it was removed since the listing.
    pub fn read(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        match secret_file::read_in(self.root, self.policy, self.dir.as_fd(), &self.bot, name) {
            Ok(value) => Ok(Some(value)),
            Err(SecretsError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the directory read from is still at the bot's name (same device and
    /// inode). `false` when the bot was deleted (its directory renamed to the trash)
    /// or replaced since it was opened: what was read is then not the bot's.
    pub fn is_current(&self) -> Result<bool> {
        let mut buf = [0u8; BotId::LEN];
        let name = std::ffi::OsStr::new(self.bot.encode(&mut buf));
        match Meta::of_entry(self.root.fd(), name) {
            Ok(m) => Ok(m.kind == Kind::Dir && m.dev == self.dev && m.ino == self.ino),
            Err(nix::errno::Errno::ENOENT) => Ok(false),
            Err(e) => Err(SecretsError::io(
                "stat",
                self.root.display_path(&self.bot, None),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::SecretsStore;
    use botmaker_domain::{BotId, SecretName};

    #[test]
    fn an_export_reads_its_directory_and_sees_a_delete_or_a_replacement() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretsStore::open(&tmp.path().join("s")).unwrap();
        let bot = BotId::generate();
        let (a, b) = (
            SecretName::parse("a").unwrap(),
            SecretName::parse("b").unwrap(),
        );
        store.write(&bot, &a, b"1").unwrap();
        store.write(&bot, &b, b"").unwrap();
        assert!(store.export_bot(&BotId::generate()).unwrap().is_none());

        let export = store.export_bot(&bot).unwrap().unwrap();
        assert_eq!(export.names(), [a.clone(), b.clone()]);
        assert_eq!(export.read(&a).unwrap().unwrap().expose(), b"1");
        store.remove(&bot, &b).unwrap();
        assert!(
            export.read(&b).unwrap().is_none(),
            "removed since the listing"
        );
        assert!(export.is_current().unwrap());
        store.delete_bot(&bot).unwrap();
        assert!(!export.is_current().unwrap(), "deleted");

        // Deleted and made again under the same id: another directory.
        store.write(&bot, &a, b"2").unwrap();
        let export = store.export_bot(&bot).unwrap().unwrap();
        store.delete_bot(&bot).unwrap();
        store.write(&bot, &a, b"3").unwrap();
        assert!(!export.is_current().unwrap(), "replaced");

        // A symlink under a secret's name is refused by the read, naming it.
        let export = store.export_bot(&bot).unwrap().unwrap();
        let link = tmp.path().join("s").join(bot.to_string()).join("c");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let export2 = store.export_bot(&bot).unwrap().unwrap();
        let c = SecretName::parse("c").unwrap();
        assert!(export2.names().contains(&c));
        assert!(matches!(
            export2.read(&c),
            Err(crate::SecretsError::Symlink { .. })
        ));
        assert!(export.is_current().unwrap());
    }
}
