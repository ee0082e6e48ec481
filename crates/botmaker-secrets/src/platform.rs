//! Read-only secrets mounted by the platform: Docker and Swarm (`/run/secrets`),
//! systemd (`$CREDENTIALS_DIRECTORY`), the `NAME_FILE` environment convention, and
//! Kubernetes secret volumes.
//!
//! These directories belong to the platform, not to us, so their modes are accepted
//! as the platform sets them (Docker's root-owned `0444` files included), and each read
//! reports whether the modes were strict ([`MountedSecret::strict_modes`]). Names are
//! resolved *beneath* the mount root: symlinks that stay inside it are followed, which
//! is how Kubernetes publishes its files (`name -> ..data/name`,
//! `..data -> ..2024_06_01_…`), and anything that would leave it is refused
//! ([`SecretsError::Escapes`]). The kernel does this with `openat2(RESOLVE_BENEATH)`;
//! where that is unavailable the links are resolved by hand, component by component,
//! with the same rule.
//!
//! Values read with [`MountedSecrets::read`] have one trailing line ending removed
//! ([`trim_trailing_newline`]), since these files are usually written with `echo`;
//! [`MountedSecrets::read_bytes`] returns the bytes exactly.
//!
//! ```
//! use botmaker_secrets::platform::{self, MountedSecrets};
//! use std::collections::HashMap;
//! use std::ffi::OsString;
//!
//! # fn main() -> Result<(), botmaker_secrets::SecretsError> {
//! let dir = tempfile::tempdir().expect("tempdir");
//! std::fs::write(dir.path().join("ai_api_key"), "sk-from-docker\n").expect("write");
//!
//! // Docker: `platform::docker()` reads /run/secrets; any directory works the same way.
//! let mounted = MountedSecrets::open(dir.path())?;
//! let key = mounted.read("ai_api_key")?;
//! assert_eq!(key.value().expose(), b"sk-from-docker");
//!
//! // The `AI_API_KEY_FILE` convention, with an explicit environment for the example.
//! let env: HashMap<String, OsString> =
//!     [("AI_API_KEY_FILE".to_owned(), dir.path().join("ai_api_key").into_os_string())].into();
//! let key = platform::read_from_env_with("AI_API_KEY", |k| env.get(k).cloned())?;
//! assert_eq!(key.value().expose(), b"sk-from-docker");
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, fstatat};

use crate::fsutil::{Kind, Meta, read_bounded};
use crate::store::SecretsOptions;
use crate::{Result, SecretValue, SecretsError, trim_trailing_newline};

/// Where Docker and Swarm mount secrets.
pub const DOCKER_SECRETS_DIR: &str = "/run/secrets";
/// The environment variable systemd sets to the service's credentials directory.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
/// The most symlinks followed while resolving one name (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// A platform-mounted secrets directory, opened once and read beneath.
#[derive(Debug)]
pub struct MountedSecrets {
    root: OwnedFd,
    path: PathBuf,
    max: usize,
}

/// One secret read from a platform mount.
#[derive(Debug)]
pub struct MountedSecret {
    value: SecretValue,
    mode: u32,
    uid: u32,
    strict_modes: bool,
}

impl MountedSecret {
    /// The value.
    pub fn value(&self) -> &SecretValue {
        &self.value
    }

    /// Takes the value.
    pub fn into_value(self) -> SecretValue {
        self.value
    }

    /// The file's permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The file's owner.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Whether the file was private: no group or other permission bits, owned by the
    /// effective user or root. Docker's default `0444` is not strict; systemd's
    /// credentials are. Callers may warn when it is `false`.
    pub fn strict_modes(&self) -> bool {
        self.strict_modes
    }
}

impl MountedSecrets {
    /// Opens a mount directory. Its own path is trusted (the platform put it there);
    /// names read from it are resolved beneath it.
    pub fn open(dir: &Path) -> Result<Self> {
        let root = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT => SecretsError::PlatformNotFound {
                path: dir.to_path_buf(),
            },
            e => SecretsError::io("open", dir.to_path_buf(), e),
        })?;
        Ok(Self {
            root,
            path: dir.to_path_buf(),
            max: SecretsOptions::DEFAULT_MAX_SECRET_SIZE,
        })
    }

    /// Sets the size cap (default 64 KiB).
    #[must_use]
    pub fn with_max_size(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `name` with one trailing line ending removed ([`trim_trailing_newline`]).
    pub fn read(&self, name: &str) -> Result<MountedSecret> {
        self.read_os(OsStr::new(name), true)
    }

    /// Reads `name` exactly as stored.
    pub fn read_bytes(&self, name: &str) -> Result<MountedSecret> {
        self.read_os(OsStr::new(name), false)
    }

    fn read_os(&self, name: &OsStr, trim: bool) -> Result<MountedSecret> {
        crate::store::traced(botmaker_domain::op_span!("read_mounted", "mount"), || {
            validate_name(name)?;
            let path = self.path.join(name);
            let fd = open_beneath(self.root.as_fd(), name).map_err(|e| match e {
                Resolve::Escapes => SecretsError::Escapes { path: path.clone() },
                Resolve::Errno(Errno::ENOENT) => {
                    SecretsError::PlatformNotFound { path: path.clone() }
                }
                Resolve::Errno(Errno::EISDIR) => SecretsError::NotRegularFile {
                    path: path.clone(),
                    kind: "directory",
                },
                Resolve::Errno(e) => SecretsError::io("open", path.clone(), e),
            })?;
            let meta =
                Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path.clone(), e))?;
            if meta.kind != Kind::File {
                return Err(SecretsError::NotRegularFile {
                    path,
                    kind: meta.kind.describe(),
                });
            }
            let too_large = |size| SecretsError::FileTooLarge {
                path: path.clone(),
                size,
                max: self.max,
            };
            if meta.size > self.max as u64 {
                return Err(too_large(meta.size));
            }
            let mut file = File::from(fd);
            let hint = usize::try_from(meta.size).unwrap_or(self.max);
            let buf = match read_bounded(&mut file, hint, self.max) {
                Ok(Ok(buf)) => buf,
                Ok(Err(n)) => return Err(too_large(n)),
                Err(source) => {
                    return Err(SecretsError::Io {
                        op: "read",
                        path,
                        source,
                    });
                }
            };
            let bytes = if trim {
                trim_trailing_newline(&buf)
            } else {
                &buf[..]
            };
            let euid = nix::unistd::geteuid().as_raw();
            let open_to_others = meta.perm & 0o077 != 0;
            Ok(MountedSecret {
                value: SecretValue::from_bytes(bytes),
                mode: meta.perm,
                uid: meta.uid,
                strict_modes: !open_to_others && (meta.uid == euid || meta.uid == 0),
            })
        })
    }
}

/// Docker and Swarm secrets: [`DOCKER_SECRETS_DIR`].
pub fn docker() -> Result<MountedSecrets> {
    MountedSecrets::open(Path::new(DOCKER_SECRETS_DIR))
}

/// systemd credentials (`LoadCredential=`, `SetCredentialEncrypted=`…): the directory
/// in `$CREDENTIALS_DIRECTORY`.
pub fn systemd() -> Result<MountedSecrets> {
    systemd_with(|k| std::env::var_os(k))
}

/// [`systemd`] with an explicit environment lookup (for tests and embedding).
pub fn systemd_with(lookup: impl Fn(&str) -> Option<OsString>) -> Result<MountedSecrets> {
    match lookup(CREDENTIALS_DIRECTORY) {
        Some(dir) if !dir.is_empty() => MountedSecrets::open(Path::new(&dir)),
        _ => Err(SecretsError::NotConfigured {
            what: format!(
                "{CREDENTIALS_DIRECTORY} is not set (not running under systemd with credentials)"
            ),
        }),
    }
}

/// The `NAME_FILE` convention: reads the file named by `$<var>_FILE` (for
/// `read_from_env("AI_API_KEY")`, the path in `$AI_API_KEY_FILE`), trimming one
/// trailing line ending. The file is resolved beneath its own directory.
pub fn read_from_env(var: &str) -> Result<MountedSecret> {
    read_from_env_with(var, |k| std::env::var_os(k))
}

/// [`read_from_env`] with an explicit environment lookup (for tests and embedding).
pub fn read_from_env_with(
    var: &str,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<MountedSecret> {
    let key = format!("{var}_FILE");
    let Some(file) = lookup(&key).filter(|v| !v.is_empty()) else {
        return Err(SecretsError::NotConfigured {
            what: format!("{key} is not set"),
        });
    };
    let path = PathBuf::from(file);
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(SecretsError::InvalidName {
            name: path.display().to_string(),
            reason: "must name a file",
        });
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    MountedSecrets::open(parent)?.read_os(name, true)
}

fn validate_name(name: &OsStr) -> Result<()> {
    let bytes = name.as_bytes();
    let reason = if bytes.is_empty() {
        Some("must not be empty")
    } else if bytes.len() > 255 {
        Some("longer than 255 bytes")
    } else if bytes.contains(&b'/') {
        Some("must be a single file name, without '/'")
    } else if bytes.contains(&0) {
        Some("must not contain NUL")
    } else if bytes == b"." || bytes == b".." {
        Some("must not be '.' or '..'")
    } else {
        None
    };
    match reason {
        Some(reason) => {
            let shown: String = name
                .to_string_lossy()
                .chars()
                .take(80)
                .flat_map(char::escape_debug)
                .collect();
            Err(SecretsError::InvalidName {
                name: shown,
                reason,
            })
        }
        None => Ok(()),
    }
}

/// Why a name could not be opened beneath the mount root.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolve {
    Errno(Errno),
    Escapes,
}

impl From<Errno> for Resolve {
    fn from(e: Errno) -> Self {
        Self::Errno(e)
    }
}

fn open_beneath(root: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Resolve> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root, name, how) {
        Ok(fd) => Ok(fd),
        Err(Errno::EXDEV) => Err(Resolve::Escapes),
        Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG | Errno::EINVAL) => {
            resolve_manually(root, name)
        }
        Err(e) => Err(Resolve::Errno(e)),
    }
}

/// Resolves `name` beneath `root` by hand: every component opened with `O_NOFOLLOW`,
/// symlinks read with `readlinkat` and expanded only while they stay beneath the root
/// (no absolute targets, no `..` above it), at most [`MAX_LINKS`] of them.
pub(crate) fn resolve_manually(root: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Resolve> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut queue: VecDeque<OsString> = VecDeque::from([name.to_owned()]);
    let mut links = 0usize;
    while let Some(c) = queue.pop_front() {
        let bytes = c.as_bytes();
        if bytes.is_empty() || bytes == b"." {
            continue;
        }
        if bytes == b".." {
            if stack.pop().is_none() {
                return Err(Resolve::Escapes);
            }
            continue;
        }
        let cur = stack.last().map_or(root, AsFd::as_fd);
        let st = fstatat(cur, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let is_link = st.st_mode & nix::sys::stat::SFlag::S_IFMT.bits()
            == nix::sys::stat::SFlag::S_IFLNK.bits();
        if is_link {
            links += 1;
            if links > MAX_LINKS {
                return Err(Resolve::Errno(Errno::ELOOP));
            }
            let target = readlinkat(cur, c.as_os_str())?;
            if target.as_bytes().starts_with(b"/") {
                return Err(Resolve::Escapes);
            }
            for p in split(&target).into_iter().rev() {
                queue.push_front(p);
            }
            continue;
        }
        if queue.iter().all(|q| q.is_empty() || q.as_bytes() == b".") {
            return Ok(openat(
                cur,
                c.as_os_str(),
                OFlag::O_RDONLY
                    | OFlag::O_NONBLOCK
                    | OFlag::O_NOCTTY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
        }
        let next = openat(
            cur,
            c.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        stack.push(next);
    }
    // The name resolved to a directory (the root or one beneath it).
    Err(Resolve::Errno(Errno::EISDIR))
}

fn split(path: &OsStr) -> Vec<OsString> {
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .map(|p| OsStr::from_bytes(p).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn k8s_layout() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("mount");
        std::fs::create_dir_all(mount.join("..2024_06_01_12_00_00.123")).unwrap();
        std::fs::write(
            mount.join("..2024_06_01_12_00_00.123/ai_api_key"),
            b"sk-k8s\n",
        )
        .unwrap();
        symlink("..2024_06_01_12_00_00.123", mount.join("..data")).unwrap();
        symlink("..data/ai_api_key", mount.join("ai_api_key")).unwrap();
        std::fs::write(tmp.path().join("outside"), b"canary").unwrap();
        symlink("../outside", mount.join("escape_rel")).unwrap();
        symlink(tmp.path().join("outside"), mount.join("escape_abs")).unwrap();
        symlink("..data/../../outside", mount.join("escape_deep")).unwrap();
        symlink("loop_b", mount.join("loop_a")).unwrap();
        symlink("loop_a", mount.join("loop_b")).unwrap();
        tmp
    }

    #[test]
    fn manual_resolution_follows_links_inside_and_refuses_escapes() {
        let tmp = k8s_layout();
        let mount = MountedSecrets::open(&tmp.path().join("mount")).unwrap();
        let root = mount.root.as_fd();
        let fd = resolve_manually(root, OsStr::new("ai_api_key")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut File::from(fd), &mut s).unwrap();
        assert_eq!(s, "sk-k8s\n");
        for bad in ["escape_rel", "escape_abs", "escape_deep"] {
            assert_eq!(
                resolve_manually(root, OsStr::new(bad)).unwrap_err(),
                Resolve::Escapes,
                "{bad}"
            );
        }
        assert_eq!(
            resolve_manually(root, OsStr::new("loop_a")).unwrap_err(),
            Resolve::Errno(Errno::ELOOP)
        );
        assert_eq!(
            resolve_manually(root, OsStr::new("missing")).unwrap_err(),
            Resolve::Errno(Errno::ENOENT)
        );
    }

    #[test]
    fn kernel_resolution_agrees() {
        let tmp = k8s_layout();
        let mount = MountedSecrets::open(&tmp.path().join("mount")).unwrap();
        let got = mount.read("ai_api_key").unwrap();
        assert_eq!(got.value().expose(), b"sk-k8s");
        for bad in ["escape_rel", "escape_abs", "escape_deep"] {
            assert!(
                matches!(mount.read(bad), Err(SecretsError::Escapes { .. })),
                "{bad}"
            );
        }
        assert!(mount.read("loop_a").is_err());
    }
}
