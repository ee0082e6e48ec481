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
