//! An installation whose secrets belong to another user (`SecretsOptions::owner`): the
//! facade and the doctor both take the owner from the `Config` (issue 11, finding 7).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use botmaker::RegistryOptions;
use botmaker::secrets::{Owner, SecretsOptions};
use botmaker::{Botmaker, Config};

use crate::{Install, new_bot, required};

/// `nobody:nogroup`: not the test's own user, so a store that ignores the owner
/// leaves the files as root's and the doctor that ignores it calls them wrong.
const OWNER: Owner = Owner {
    uid: 65534,
    gid: 65534,
};

/// Handing files to another user takes `CAP_CHOWN`: CI runs the tests as root.
fn require_root() {
    assert!(
        euid_is_root(),
        "this test chowns files to 65534:65534 and needs root (CI runs tests as root); \
         run it as root, e.g. in the CI container"
    );
}

fn euid_is_root() -> bool {
    // The owner of a file this process just made is its effective uid.
    let dir = tempfile::tempdir().unwrap();
    std::fs::metadata(dir.path()).unwrap().uid() == 0
}

fn owned_by(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

fn installation_with_owner() -> (Install, Config) {
    require_root();
    let install = Install::new();
    let config = install.config.clone().with_secrets_owner(Some(OWNER));
    (install, config)
}

/// Every entry of the root (bot directories, the lock file) and every secret file,
/// with its owner.
fn owners_under(root: &Path) -> Vec<(String, (u32, u32))> {
    let mut found = Vec::new();
    for bot in std::fs::read_dir(root).unwrap() {
        let bot = bot.unwrap().path();
        found.push((bot.display().to_string(), owned_by(&bot)));
        if !bot.is_dir() {
            continue; // the advisory lock file `.lock`, the owner's too
        }
        for file in std::fs::read_dir(&bot).unwrap() {
            let file = file.unwrap().path();
            found.push((file.display().to_string(), owned_by(&file)));
        }
    }
    found
}

#[test]
fn the_doctor_checks_against_the_configured_owner() {
    let (_install, config) = installation_with_owner();
    // The store opened with the owner explicitly (an API that always honoured it):
    // the files are the owner's, as they should be.
    let bm = Botmaker::open_with(
        &config,
        RegistryOptions::default(),
        SecretsOptions {
            owner: Some(OWNER),
            ..SecretsOptions::default()
        },
    )
    .unwrap();
    bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    drop(bm);
    let report = Botmaker::doctor(&config, false);
    assert!(
        report.is_healthy(),
        "the doctor must use the installation's owner: {report}"
    );
    // And a file that really is someone else's is still reported.
    let report_default = Botmaker::doctor(&config.clone().with_secrets_owner(None), false);
    assert!(!report_default.is_healthy(), "{report_default}");
}

#[test]
fn open_hands_everything_to_the_configured_owner_and_the_doctor_agrees() {
    let (_install, config) = installation_with_owner();
    let bm = Botmaker::open(&config).unwrap();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    bm.set_secret(&bot, &"ai_api_key".parse().unwrap(), b"rotated")
        .unwrap();
    assert_eq!(
        bm.get_secret(&bot, &"ai_api_key".parse().unwrap())
            .unwrap()
            .expose(),
        b"rotated"
    );
    let owners = owners_under(config.secrets_dir());
    assert_eq!(
        owners.len(),
        6,
        "the lock file, the root's id file, a bot directory and its three secrets: {owners:?}"
    );
    for (path, owner) in &owners {
        assert_eq!(*owner, (OWNER.uid, OWNER.gid), "{path}");
    }
    drop(bm);
    for fix in [false, true] {
        let report = Botmaker::doctor(&config, fix);
        assert!(report.is_healthy(), "fix={fix}: {report}");
        assert!(report.findings.is_empty(), "fix={fix}: {report}");
    }
    assert!(
        owners_under(config.secrets_dir())
            .iter()
            .all(|(_, o)| *o == (OWNER.uid, OWNER.gid))
    );
}
