//! Platform-mounted secrets: Docker, systemd, NAME_FILE, Kubernetes volumes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use botmaker_secrets::SecretsError;
use botmaker_secrets::platform::{self, MountedSecrets};

use crate::common::{CANARY, Canary};

fn write(path: &Path, data: &[u8], m: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn docker_style_mount_accepts_0444_and_reports_it_is_not_strict() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("ai_api_key"), b"sk-docker\n", 0o444);
    write(&tmp.path().join("private"), b"sk-private\r\n", 0o400);
    write(&tmp.path().join("exact"), b"two\n\n", 0o400);
    let mounted = MountedSecrets::open(tmp.path()).unwrap();
    let got = mounted.read("ai_api_key").unwrap();
    assert_eq!(got.value().expose(), b"sk-docker");
    assert_eq!(got.mode(), 0o444);
    assert!(!got.strict_modes());
    let got = mounted.read("private").unwrap();
    assert_eq!(got.value().expose(), b"sk-private");
    assert!(got.strict_modes());
    assert_eq!(mounted.read("exact").unwrap().value().expose(), b"two\n");
    assert_eq!(
        mounted.read_bytes("exact").unwrap().value().expose(),
        b"two\n\n"
    );
    assert!(!format!("{got:?}").contains("sk-private"));
    assert!(matches!(
        mounted.read("missing"),
        Err(SecretsError::PlatformNotFound { .. })
    ));
}

#[test]
fn kubernetes_volume_links_are_followed_inside_only() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new(tmp.path().join("outside"));
    let mount = tmp.path().join("mount");
    let data = mount.join("..2024_06_01_12_00_00.123456789");
    std::fs::create_dir_all(&data).unwrap();
    write(&data.join("channel_token"), b"xoxb-k8s\n", 0o644);
    symlink("..2024_06_01_12_00_00.123456789", mount.join("..data")).unwrap();
    symlink("..data/channel_token", mount.join("channel_token")).unwrap();
    symlink("../outside/ai_api_key", mount.join("escape")).unwrap();
    symlink(canary.file(), mount.join("absolute")).unwrap();
    symlink("..data/../../outside/ai_api_key", mount.join("sneaky")).unwrap();

    let mounted = MountedSecrets::open(&mount).unwrap();
    let got = mounted.read("channel_token").unwrap();
    assert_eq!(got.value().expose(), b"xoxb-k8s");
    assert!(!got.strict_modes());
    for bad in ["escape", "absolute", "sneaky"] {
        let err = mounted.read(bad).unwrap_err();
        assert!(matches!(err, SecretsError::Escapes { .. }), "{bad}: {err}");
        assert!(
            !err.to_string()
                .contains(std::str::from_utf8(CANARY).unwrap())
        );
    }
    for bad in [
        "",
        ".",
        "..",
        "../outside/ai_api_key",
        "a/b",
        "/etc/passwd",
        "a\0b",
    ] {
        assert!(
            matches!(mounted.read(bad), Err(SecretsError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        mounted.read("..data"),
        Err(SecretsError::NotRegularFile { .. })
    ));
    canary.check();
}

#[test]
fn fifo_and_oversized_mounted_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(
        &tmp.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    write(&tmp.path().join("big"), &[b'x'; 11], 0o600);
    let mounted = MountedSecrets::open(tmp.path()).unwrap().with_max_size(10);
    assert!(matches!(
        mounted.read("fifo"),
        Err(SecretsError::NotRegularFile { kind: "fifo", .. })
    ));
    let err = mounted.read("big").unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::FileTooLarge {
                size: 11,
                max: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(mounted.path(), tmp.path());
}

#[test]
fn systemd_and_name_file_conventions_use_the_given_environment() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("ai_api_key"), b"sk-systemd\n", 0o400);
    let env: HashMap<&str, OsString> = HashMap::from([
        ("CREDENTIALS_DIRECTORY", tmp.path().as_os_str().to_owned()),
        (
            "AI_API_KEY_FILE",
            tmp.path().join("ai_api_key").into_os_string(),
        ),
    ]);
    let lookup = |k: &str| env.get(k).cloned();

    let creds = platform::systemd_with(lookup).unwrap();
    let got = creds.read("ai_api_key").unwrap();
    assert_eq!(got.value().expose(), b"sk-systemd");
    assert!(got.strict_modes());

    let got = platform::read_from_env_with("AI_API_KEY", lookup).unwrap();
    assert_eq!(got.into_value().expose(), b"sk-systemd");

    let none = |_: &str| None;
    let err = platform::systemd_with(none).unwrap_err();
    assert!(matches!(err, SecretsError::NotConfigured { .. }));
    assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");
    let err = platform::read_from_env_with("CHANNEL_TOKEN", none).unwrap_err();
    assert!(
        err.to_string().contains("CHANNEL_TOKEN_FILE is not set"),
        "{err}"
    );
}
