//! What the doctor reports on installations that are not healthy.

use botmaker::domain::AiProvider;
use botmaker::{Botmaker, Config, FindingKind};

use crate::{Install, new_bot};

fn kinds(config: &Config, fix: bool) -> Vec<FindingKind> {
    Botmaker::doctor(config, fix)
        .findings
        .iter()
        .filter(|f| !f.fixed)
        .map(|f| f.kind)
        .collect()
}

#[test]
fn a_missing_database_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
    let report = Botmaker::doctor(&config, true);
    assert!(!report.is_healthy());
    assert_eq!(report.findings[0].kind, FindingKind::Database);
    assert!(report.findings[0].detail.contains("migrate"), "{report}");
    assert!(!config.database_path().exists());
}

#[test]
fn a_database_newer_than_the_code_is_a_migrations_finding() {
    let install = Install::new();
    let conn = rusqlite::Connection::open(install.config.database_path()).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (42, 'future', '2030-01-01', '1')",
        [],
    )
    .unwrap();
    drop(conn);
    assert_eq!(kinds(&install.config, true), [FindingKind::Migrations]);
}

#[test]
fn bots_missing_required_secrets_are_named() {
    let install = Install::new();
    let bm = install.open();
    bm.create_bot(
        &new_bot("alpha"),
        &[("ai_api_key".parse().unwrap(), b"k".as_slice())],
    )
    .unwrap();
    let report = Botmaker::doctor(&install.config, true);
    let finding = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::MissingSecrets)
        .unwrap();
    assert!(
        finding.subject.starts_with("alpha ("),
        "{}",
        finding.subject
    );
    assert!(
        finding.detail.contains("channel_token, channel_config"),
        "{}",
        finding.detail
    );
    assert!(!finding.fixed, "the doctor cannot invent credentials");
}

#[test]
fn an_ollama_bot_needs_no_api_key_but_an_openai_bot_does() {
    let install = Install::new();
    let bm = install.open();
    let channel_only = [
        ("channel_token".parse().unwrap(), b"t".as_slice()),
        ("channel_config".parse().unwrap(), b"{}".as_slice()),
    ];
    let mut local = new_bot("local");
    local.ai_provider = AiProvider::Ollama;
    let local = bm.create_bot(&local, &channel_only).unwrap();
    assert!(bm.missing_secrets(&local).unwrap().is_empty());
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");

    let hosted = bm.create_bot(&new_bot("hosted"), &channel_only).unwrap();
    let missing = bm.missing_secrets(&hosted).unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].as_str(), "ai_api_key");
    let report = Botmaker::doctor(&install.config, false);
    assert!(!report.is_healthy());
    let unhealthy: Vec<_> = report.findings.iter().filter(|f| !f.fixed).collect();
    assert_eq!(unhealthy.len(), 1, "{report}");
    assert_eq!(unhealthy[0].kind, FindingKind::MissingSecrets);
    assert!(unhealthy[0].subject.starts_with("hosted ("), "{report}");
    assert!(
        unhealthy[0]
            .detail
            .contains("missing required secrets: ai_api_key ("),
        "{report}"
    );
}

#[test]
fn leftovers_and_modes_are_repaired_and_reported() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let install = Install::new();
    let bm = install.open();
    let bot = bm
        .create_bot(&new_bot("alpha"), &crate::required())
        .unwrap();
    drop(bm);
    let dir = install.config.secrets_dir().join(bot.id.to_string());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("ai_api_key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    // The debris of an interrupted bot deletion: swept by every open, reported as fixed.
    let trash = install.config.secrets_dir().join(".trash-interrupted");
    std::fs::create_dir(&trash).unwrap();
    std::fs::write(trash.join("ai_api_key"), b"old").unwrap();
    let report = Botmaker::doctor(&install.config, false);
    let leftover = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Leftovers)
        .unwrap();
    assert!(
        leftover.fixed && leftover.detail.contains("removed 1"),
        "{report}"
    );
    assert!(!trash.exists());
    assert_eq!(
        kinds(&install.config, false),
        [FindingKind::SecretsDrift, FindingKind::SecretsDrift]
    );
    let fixed = Botmaker::doctor(&install.config, true);
    assert!(fixed.is_healthy(), "{fixed}");
    assert_eq!(fixed.findings.len(), 2);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(
        std::fs::metadata(dir.join("ai_api_key")).unwrap().mode() & 0o7777,
        0o600
    );
}

/// The doctor never deletes an orphan's credentials, deterministically (the campaign
/// only sometimes makes an orphan): orphans with files of every kind the store reads
/// (values, an odd mode, an empty file, a large one) are moved whole into the
/// quarantine, the same inodes with the same bytes, and a second `--fix` and a
/// reopening leave them there.
#[test]
fn the_doctor_never_deletes_an_orphan() {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let install = Install::new();
    let bm = install.open();
    let kept = bm.create_bot(&new_bot("kept"), &crate::required()).unwrap();
    let orphans: Vec<_> = (0..3).map(|i| new_bot(&format!("orphan-{i}")).id).collect();
    let mut before = BTreeMap::new();
    for (i, id) in orphans.iter().enumerate() {
        assert!(bm.secrets().create_bot(id).unwrap());
        for (name, value) in crate::required() {
            bm.secrets().write(id, &name, value).unwrap();
        }
        let dir = install.config.secrets_dir().join(id.to_string());
        match i {
            0 => std::fs::set_permissions(
                dir.join("ai_api_key"),
                std::fs::Permissions::from_mode(0o640),
            )
            .unwrap(),
            1 => std::fs::write(dir.join("extra_key"), b"").unwrap(),
            _ => std::fs::write(dir.join("zzz_key"), vec![b'z'; 70_000]).unwrap(),
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            before.insert(meta.ino(), (id.to_string(), bytes));
        }
    }
    drop(bm);
    for round in 0..2 {
        let report = Botmaker::doctor(&install.config, true);
        let quarantined = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::OrphanSecrets && f.fixed)
            .count();
        assert_eq!(
            quarantined,
            if round == 0 { orphans.len() } else { 0 },
            "round {round}: {report}"
        );
        // Every file of every orphan is still there, with its bytes, under the
        // quarantine (the same inode: moved, not copied).
        let mut after = BTreeMap::new();
        let quarantine = install.config.secrets_dir().join(".quarantine");
        let entries = std::fs::read_dir(&quarantine).unwrap_or_else(|e| {
            panic!(
                "round {round}: no {} ({e}): the orphans' {} files are gone",
                quarantine.display(),
                before.len()
            )
        });
        for q in entries {
            let q = q.unwrap();
            let owner = orphans
                .iter()
                .map(ToString::to_string)
                .find(|id| q.file_name().to_string_lossy().starts_with(id.as_str()))
                .unwrap_or_else(|| panic!("unexpected quarantine entry {:?}", q.file_name()));
            for entry in std::fs::read_dir(q.path()).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                after.insert(
                    meta.ino(),
                    (owner.clone(), std::fs::read(entry.path()).unwrap()),
                );
            }
        }
        assert_eq!(
            after, before,
            "round {round}: an orphan's file changed or vanished"
        );
    }
    assert_eq!(
        install.root_entries(),
        [".quarantine", &kept.id.to_string()]
    );
    let bm = install.open();
    assert_eq!(bm.secrets().bots().unwrap(), [kept.id]);
}
