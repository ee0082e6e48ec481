use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use botmaker_domain::{BotId, SecretName};
use botmaker_secrets::{SecretsOptions, SecretsStore};
use tempfile::TempDir;

pub struct Fixture {
    pub tmp: TempDir,
    pub root: PathBuf,
    pub store: SecretsStore,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with(SecretsOptions::default())
    }

    pub fn with(options: SecretsOptions) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        let store = SecretsStore::open_with(&root, options).unwrap();
        Self { tmp, root, store }
    }

    pub fn reopen(&mut self) -> &SecretsStore {
        self.store = SecretsStore::open(&self.root).unwrap();
        &self.store
    }

    pub fn bot_dir(&self, bot: &BotId) -> PathBuf {
        self.root.join(bot.to_string())
    }

    pub fn secret_path(&self, bot: &BotId, name: &str) -> PathBuf {
        self.bot_dir(bot).join(name)
    }

    /// A directory outside the store holding `ai_api_key` and `channel_token` canaries.
    pub fn outside(&self) -> Canary {
        Canary::new(self.tmp.path().join("outside"))
    }
}

pub fn name(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

pub fn uid(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().uid()
}

pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The names in a folder, sorted: the test kit's listing.
pub use botmaker_testkit::scratch::entries;

pub const CANARY: &[u8] = b"CANARY-OUTSIDE-THE-STORE";

/// An outside directory with canary files; `check` asserts it is exactly as made.
pub struct Canary {
    pub dir: PathBuf,
    inode: u64,
}

impl Canary {
    pub fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["ai_api_key", "channel_token"] {
            std::fs::write(dir.join(n), CANARY).unwrap();
            std::fs::set_permissions(dir.join(n), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let inode = std::fs::metadata(dir.join("ai_api_key")).unwrap().ino();
        Self { dir, inode }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("ai_api_key")
    }

    pub fn check(&self) {
        assert_eq!(
            entries(&self.dir),
            ["ai_api_key", "channel_token"],
            "outside dir changed"
        );
        for n in ["ai_api_key", "channel_token"] {
            let p = self.dir.join(n);
            assert_eq!(std::fs::read(&p).unwrap(), CANARY, "canary {n} changed");
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(m.file_type().is_file());
            assert_eq!(m.nlink(), 1);
        }
        assert_eq!(std::fs::metadata(self.file()).unwrap().ino(), self.inode);
        assert_eq!(mode(&self.file()), 0o644, "canary mode must not be touched");
    }
}

/// Re-runs this test binary for one test, with `env` set (the child branch of that
/// test runs; in a normal run the env var is absent and the test returns at once).
pub fn run_child(test: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "child {test} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
