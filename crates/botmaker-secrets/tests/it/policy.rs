//! The one file policy, from both sides: a secret file's mode must be exactly 0600 or
//! 0400. `read` accepts what the audit does not report and refuses what it reports;
//! the repair makes every refused mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use botmaker_domain::BotId;
use botmaker_secrets::{Finding, Issue, SecretsError};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::common::{Fixture, euid, mode, name};

fn chmod(path: &Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

/// The findings of an audit (or repair) about one entry.
fn findings_for(report: &[Finding], path: &str) -> Vec<Issue> {
    report
        .iter()
        .filter(|f| f.path == path)
        .map(|f| f.issue.clone())
        .collect()
}

/// Without `CAP_DAC_OVERRIDE`, a file its owner cannot read cannot be opened to be
/// read or repaired; CI runs as root, where every mode can.
fn owner_can_open(perm: u32) -> bool {
    euid() == 0 || perm & 0o400 != 0
}

#[test]
fn a_0400_file_is_read_not_reported_and_replaced_by_a_0600_write() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"read-only").unwrap();
    let path = fx.secret_path(&bot, "ai_api_key");
    chmod(&path, 0o400);

    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"read-only");
    assert!(fx.store.audit().unwrap().is_clean());
    assert!(fx.store.repair().unwrap().is_clean());
    assert_eq!(
        mode(&path),
        0o400,
        "the repair leaves an accepted mode alone"
    );
    assert_eq!(fx.store.list(&bot).unwrap()[0].mode, 0o400);
    assert!(
        fx.store
            .missing(&bot, std::slice::from_ref(&key))
            .unwrap()
            .is_empty()
    );

    fx.store.write(&bot, &key, b"rewritten").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"rewritten");
}

#[test]
fn other_modes_are_refused_by_read_flagged_by_audit_and_repaired_to_0600() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let modes = [0o700, 0o640, 0o604, 0o200, 0o4600, 0o644, 0o000, 0o1600];
    let keys: Vec<String> = (0..modes.len()).map(|i| format!("secret_{i}")).collect();
    for (k, m) in keys.iter().zip(modes) {
        fx.store.write(&bot, &name(k), b"v").unwrap();
        chmod(&fx.secret_path(&bot, k), m);
        assert_eq!(mode(&fx.secret_path(&bot, k)), m, "chmod {m:04o}");
    }
    let audit = fx.store.audit().unwrap();
    for (k, m) in keys.iter().zip(modes) {
        let wrong = Issue::WrongMode {
            mode: m,
            expected: 0o600,
        };
        assert_eq!(
            findings_for(&audit.findings, &format!("{bot}/{k}")),
            [wrong]
        );
        if owner_can_open(m) {
            let err = fx.store.read(&bot, &name(k)).unwrap_err();
            assert!(
                matches!(err, SecretsError::InsecureMode { mode, expected: 0o600, .. } if mode == m),
                "{m:04o}: {err}"
            );
            assert!(err.to_string().contains(&format!("{m:04o}")), "{err}");
        } else {
            assert!(fx.store.read(&bot, &name(k)).is_err());
        }
    }

    let repaired = fx.store.repair().unwrap();
    for (k, m) in keys.iter().zip(modes) {
        let shown = format!("{bot}/{k}");
        let finding = repaired.findings.iter().find(|f| f.path == shown).unwrap();
        if !owner_can_open(m) {
            continue;
        }
        assert!(finding.repaired, "{finding}");
        assert_eq!(mode(&fx.secret_path(&bot, k)), 0o600, "{m:04o} repaired");
        assert_eq!(fx.store.read(&bot, &name(k)).unwrap().expose(), b"v");
    }
    if euid() == 0 {
        assert!(fx.store.audit().unwrap().is_clean());
    }
}

#[test]
fn read_and_audit_agree_on_every_mode() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"v").unwrap();
    let path = fx.secret_path(&bot, "ai_api_key");
    let shown = format!("{bot}/ai_api_key");
    // One store and one file for every case: a case is a chmod, a read and two walks.
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    // Any mode, the two accepted ones, and each of them with one bit flipped: the
    // boundary a random mode rarely hits.
    let accepted = prop::sample::select(vec![0o600u32, 0o400]);
    let modes = prop_oneof![
        2 => 0u32..=0o7777,
        1 => accepted.clone(),
        1 => (accepted, 0u32..12).prop_map(|(m, bit)| m ^ (1 << bit)),
    ];
    runner
        .run(&modes, |perm| {
            chmod(&path, perm);
            // What the kernel kept (an unprivileged chmod may drop setgid).
            let perm = mode(&path);
            let accepted = perm == 0o600 || perm == 0o400;
            let read = fx.store.read(&bot, &key);
            let audit = findings_for(&fx.store.audit().unwrap().findings, &shown);
            prop_assert_eq!(read.is_ok(), audit.is_empty(), "mode {:04o}", perm);
            prop_assert_eq!(read.is_ok(), accepted, "mode {:04o}", perm);
            if !accepted {
                prop_assert_eq!(
                    audit,
                    vec![Issue::WrongMode {
                        mode: perm,
                        expected: 0o600
                    }]
                );
                if owner_can_open(perm) {
                    let refused = matches!(
                        read,
                        Err(SecretsError::InsecureMode { mode, expected: 0o600, .. }) if mode == perm
                    );
                    prop_assert!(refused, "mode {:04o}", perm);
                }
            }
            fx.store.repair().unwrap();
            if owner_can_open(perm) {
                let after = if accepted { perm } else { 0o600 };
                prop_assert_eq!(mode(&path), after, "mode {:04o}", perm);
                prop_assert!(fx.store.read(&bot, &key).is_ok());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_other_refusal_of_read_is_reported_by_the_audit() {
    let fx = Fixture::with(botmaker_secrets::SecretsOptions {
        max_secret_size: 4,
        ..botmaker_secrets::SecretsOptions::default()
    });
    let bot = BotId::generate();
    fx.store.write(&bot, &name("fine"), b"v").unwrap();
    fx.store.write(&bot, &name("linked"), b"v").unwrap();
    std::fs::hard_link(fx.secret_path(&bot, "linked"), fx.root.join("outside_name")).unwrap();
    std::fs::write(fx.secret_path(&bot, "big"), b"12345").unwrap();
    chmod(&fx.secret_path(&bot, "big"), 0o600);
    std::fs::create_dir(fx.secret_path(&bot, "dir")).unwrap();
    nix::unistd::mkfifo(
        &fx.secret_path(&bot, "fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink(fx.secret_path(&bot, "fine"), fx.secret_path(&bot, "link")).unwrap();
    if euid() == 0 {
        fx.store.write(&bot, &name("foreign"), b"v").unwrap();
        std::os::unix::fs::chown(fx.secret_path(&bot, "foreign"), Some(65534), None).unwrap();
    }

    let audit = fx.store.audit().unwrap();
    let cases: Vec<(&str, Option<Issue>)> = vec![
        ("fine", None),
        ("linked", Some(Issue::HardLinked { nlink: 2 })),
        ("big", Some(Issue::TooLarge { size: 5, max: 4 })),
        ("dir", Some(Issue::NotRegularFile { kind: "directory" })),
        ("fifo", Some(Issue::NotRegularFile { kind: "fifo" })),
        ("link", Some(Issue::Symlink)),
    ];
    for (n, issue) in cases {
        let found = findings_for(&audit.findings, &format!("{bot}/{n}"));
        let read = fx.store.read(&bot, &name(n));
        assert_eq!(found, issue.clone().into_iter().collect::<Vec<_>>(), "{n}");
        assert_eq!(read.is_ok(), issue.is_none(), "{n}: {read:?}");
    }
    if euid() == 0 {
        let found = findings_for(&audit.findings, &format!("{bot}/foreign"));
        assert_eq!(
            found,
            [Issue::WrongOwner {
                uid: 65534,
                expected: 0
            }]
        );
        assert!(matches!(
            fx.store.read(&bot, &name("foreign")),
            Err(SecretsError::WrongOwner { uid: 65534, .. })
        ));
    }
}
