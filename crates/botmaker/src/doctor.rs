//! The doctor: checks an installation end to end and repairs what is safe.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use botmaker_domain::{BotId, BotRepository, SecretName, SecretsRootId};
#[cfg(feature = "postgres")]
use botmaker_postgres::{DatabaseUrl, PgError, PgOptions, PgStore};
use botmaker_secrets::{Issue, LockMode, SecretsStore};
#[cfg(feature = "sqlite")]
use botmaker_sqlite::{SqliteStore, StoreError, StoreOptions};

use crate::{Botmaker, Config, DATABASE_URL_VAR, Database, registry};

/// What area a [`Finding`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// The registry: missing, not a database, failing its integrity check, a backend
    /// this build lacks, a malformed database URL.
    Database,
    /// The schema: migrations pending, or a database newer than the code.
    Migrations,
    /// The secrets root: missing permissions, wrong owner, cannot be opened.
    SecretsRoot,
    /// A mode, owner or file type inside the secrets store differs from what it should be.
    SecretsDrift,
    /// Temporary or trash entries left by an interrupted write or delete.
    Leftovers,
    /// A secrets directory whose bot is not in the database.
    OrphanSecrets,
    /// A registered bot lacks one of the required secrets.
    MissingSecrets,
    /// A secrets directory in this root for a bot whose secrets the registry places
    /// in another secrets root (a stale copy): reported, never moved or deleted.
    StaleSecrets,
}

impl FindingKind {
    /// A short lowercase name (`database`, `orphan-secrets`, …), also used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Migrations => "migrations",
            Self::SecretsRoot => "secrets-root",
            Self::SecretsDrift => "secrets-drift",
            Self::Leftovers => "leftovers",
            Self::OrphanSecrets => "orphan-secrets",
            Self::MissingSecrets => "missing-secrets",
            Self::StaleSecrets => "stale-secrets",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem the doctor found, and whether `fix` repaired it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The area.
    pub kind: FindingKind,
    /// What it is about: a path relative to the secrets root, a bot, the database file.
    pub subject: String,
    /// What is wrong, and what to do when it was not fixed.
    pub detail: String,
    /// Whether it was repaired in this run.
    pub fixed: bool,
}

/// The doctor's report: every finding, fixed or not. Healthy when nothing is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DoctorReport {
    /// What was found, in the order of the checks.
    pub findings: Vec<Finding>,
    /// How many bots were checked: those whose secrets this host's root holds (or
    /// that no root has adopted yet).
    pub bots_checked: usize,
    /// How many bots the registry places in another secrets root (another host
    /// sharing the registry): neither their secrets nor their absence here is checked.
    pub held_elsewhere: usize,
    /// This host's secrets root's id, when the secrets store could be opened.
    pub secrets_root: Option<SecretsRootId>,
}

impl DoctorReport {
    /// True when no finding remains unfixed.
    pub fn is_healthy(&self) -> bool {
        self.findings.iter().all(|f| f.fixed)
    }

    fn push(
        &mut self,
        kind: FindingKind,
        subject: impl Into<String>,
        detail: impl Into<String>,
        fixed: bool,
    ) {
        let finding = Finding {
            kind,
            subject: subject.into(),
            detail: detail.into(),
            fixed,
        };
        // A repair is news (info); what is left for an operator is a warning.
        if fixed {
            tracing::info!(kind = %finding.kind, subject = %finding.subject, detail = %finding.detail, "doctor repaired");
        } else {
            tracing::warn!(kind = %finding.kind, subject = %finding.subject, detail = %finding.detail, "doctor finding");
        }
        self.findings.push(finding);
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let state = if finding.fixed { "fixed" } else { "problem" };
            writeln!(
                f,
                "{state}: [{}] {}: {}",
                finding.kind, finding.subject, finding.detail
            )?;
        }
        let open = self.findings.iter().filter(|f| !f.fixed).count();
        let fixed = self.findings.len() - open;
        if let Some(root) = self.secrets_root {
            writeln!(f, "secrets root: {root}")?;
        }
        let elsewhere = match self.held_elsewhere {
            0 => String::new(),
            n => format!(", {n} held by other secrets roots"),
        };
        if open == 0 {
            writeln!(
                f,
                "healthy: {} bots checked, {fixed} problems fixed{elsewhere}",
                self.bots_checked
            )
        } else {
            writeln!(
                f,
                "unhealthy: {open} problems remain ({fixed} fixed, {} bots checked{elsewhere})",
                self.bots_checked
            )
        }
    }
}

impl Botmaker {
    /// Checks the installation `config` describes: database integrity (SQLite's
    /// `integrity_check`, or on PostgreSQL the store's consistency check), migrations,
    /// secrets drift (modes, owners, symlinks, unexpected entries), leftovers of
    /// interrupted operations, orphan secrets directories and bots missing required
    /// secrets.
    ///
    /// With `fix`, it repairs what is safe: modes (by `fchmod` on a descriptor, never
    /// through a symlink), leftovers, and orphan secrets directories, which are moved
    /// into a quarantine inside the secrets root (credentials are never deleted). It
    /// never migrates, and never touches a database it cannot open.
    ///
    /// Opening the secrets store sweeps leftovers of interrupted writes and deletes;
    /// the report lists them as fixed, since that happens on every open.
    ///
    /// Hosts sharing one registry each have their own secrets root: a bot the
    /// registry places in another root ([`Bot::secrets_root`](botmaker_domain::Bot))
    /// is counted in [`DoctorReport::held_elsewhere`], and neither its secrets nor
    /// their absence here is a finding; a directory here for such a bot is a stale
    /// copy ([`FindingKind::StaleSecrets`]), reported and never moved. With `fix`, a
    /// bot no root has adopted yet (registered before schema V3) whose directory is
    /// here is adopted by this root (reported as fixed).
    pub fn doctor(config: &Config, fix: bool) -> DoctorReport {
        let span = tracing::debug_span!(
            "doctor",
            op = "doctor",
            backend = config.database().map_or("unknown", Database::backend),
            fix,
            findings = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        let _entered = span.enter();
        let report = doctor(config, fix);
        span.record("findings", report.findings.len());
        span.record(
            "outcome",
            if report.is_healthy() {
                "healthy"
            } else {
                "unhealthy"
            },
        );
        report
    }
}

/// [`Botmaker::doctor`], inside its span.
fn doctor(config: &Config, fix: bool) -> DoctorReport {
    {
        let mut report = DoctorReport::default();
        let registry = check_database(config, &mut report);
        let secrets_subject = config.secrets_dir().display().to_string();
        // The installation's options, owner included: with the defaults, every file of
        // an installation with an owner would be reported as someone else's.
        let opened = config
            .secrets_options()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                SecretsStore::open_with(config.secrets_dir(), o).map_err(|e| e.to_string())
            });
        let secrets = match opened {
            Ok(s) => s,
            Err(e) => {
                report.push(FindingKind::SecretsRoot, secrets_subject, e, false);
                return report;
            }
        };
        report.secrets_root = Some(secrets.root_id());
        check_secrets(&secrets, fix, &secrets_subject, &mut report);
        if let Some((registry, subject)) = registry {
            check_consistency(registry.as_ref(), &subject, &secrets, fix, &mut report);
        }
        report
    }
}

/// Opens the registry the configuration selects, the way every command does (never
/// migrating), and runs its backend's health check: the registry and how findings
/// name it, or `None` when it cannot be opened (reported).
fn check_database(
    config: &Config,
    report: &mut DoctorReport,
) -> Option<(Arc<dyn BotRepository>, String)> {
    let database = match config.database() {
        Ok(database) => database,
        Err(e) => {
            report.push(
                FindingKind::Database,
                DATABASE_URL_VAR,
                e.to_string(),
                false,
            );
            return None;
        }
    };
    let subject = registry::describe(config, database);
    #[allow(unreachable_patterns)] // the last arm: only builds without a backend's feature
    match database {
        #[cfg(feature = "sqlite")]
        Database::Sqlite => check_sqlite(config, report).map(|store| (store, subject)),
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => {
            check_postgres(url, &subject, report).map(|store| (store, subject))
        }
        other => {
            let e = registry::unsupported(config, other);
            report.push(FindingKind::Database, subject, e.to_string(), false);
            None
        }
    }
}

/// SQLite: `PRAGMA integrity_check`, and the store's refusals (a schema too new,
/// migrations pending) as migration findings.
#[cfg(feature = "sqlite")]
fn check_sqlite(config: &Config, report: &mut DoctorReport) -> Option<Arc<dyn BotRepository>> {
    let db_path = config.database_path();
    let subject = db_path.display().to_string();
    match SqliteStore::open_with(&db_path, StoreOptions::default()) {
        Ok(store) => {
            match store.integrity_check() {
                Ok(problems) => {
                    for p in problems {
                        report.push(
                            FindingKind::Database,
                            &subject,
                            format!("integrity check: {p}"),
                            false,
                        );
                    }
                }
                Err(e) => report.push(FindingKind::Database, &subject, e.to_string(), false),
            }
            Some(Arc::new(store))
        }
        Err(e) => {
            let kind = match e {
                StoreError::SchemaTooNew { .. } | StoreError::MigrationsPending { .. } => {
                    FindingKind::Migrations
                }
                _ => FindingKind::Database,
            };
            report.push(kind, &subject, with_migrate_hint(&e), false);
            None
        }
    }
}

/// PostgreSQL: the store's refusals (a schema too new, migrations pending, a diverged
/// history, a database that is not botmaker's) as migration findings, then
/// [`PgStore::consistency_check`] in place of SQLite's `integrity_check`. Findings name
/// the database by its redacted connection string.
#[cfg(feature = "postgres")]
fn check_postgres(
    url: &crate::PostgresUrl,
    subject: &str,
    report: &mut DoctorReport,
) -> Option<Arc<dyn BotRepository>> {
    let opened =
        DatabaseUrl::parse(url.expose()).and_then(|url| PgStore::open(&url, PgOptions::default()));
    match opened {
        Ok(store) => {
            match store.consistency_check() {
                Ok(problems) => {
                    for p in problems {
                        report.push(
                            FindingKind::Database,
                            subject,
                            format!("consistency check: {p}"),
                            false,
                        );
                    }
                }
                Err(e) => report.push(FindingKind::Database, subject, e.to_string(), false),
            }
            Some(Arc::new(store))
        }
        Err(e) => {
            let kind = match e {
                PgError::SchemaTooNew { .. }
                | PgError::MigrationsPending { .. }
                | PgError::MigrationsDiverged { .. } => FindingKind::Migrations,
                _ => FindingKind::Database,
            };
            let hint = crate::postgres_migrate_hint(&e).unwrap_or("");
            report.push(kind, subject, format!("{e}{hint}"), false);
            None
        }
    }
}

/// A finding's detail says what to do about it (as the other findings do), and the
/// store's message does not name a command: a library cannot know which binary its
/// caller runs, but the doctor's report is advice for an operator of this
/// installation, where both migrate commands exist.
#[cfg(feature = "sqlite")]
fn with_migrate_hint(e: &StoreError) -> String {
    format!("{e}{}", crate::migrate_hint(e).unwrap_or(""))
}

/// Leftovers swept on open, then the secrets store's own audit (or repair).
fn check_secrets(secrets: &SecretsStore, fix: bool, subject: &str, report: &mut DoctorReport) {
    if secrets.swept() > 0 {
        let detail = format!(
            "removed {} leftover temporary or trash entries of interrupted operations",
            secrets.swept()
        );
        report.push(FindingKind::Leftovers, subject, detail, true);
    }
    match if fix {
        secrets.repair()
    } else {
        secrets.audit()
    } {
        Ok(audit) => {
            for finding in &audit.findings {
                let kind = match finding.issue {
                    Issue::LeftoverTemp | Issue::LeftoverTrash => FindingKind::Leftovers,
                    _ => FindingKind::SecretsDrift,
                };
                report.push(
                    kind,
                    &finding.path,
                    finding.issue.to_string(),
                    finding.repaired,
                );
            }
        }
        Err(e) => report.push(FindingKind::SecretsRoot, subject, e.to_string(), false),
    }
}

/// The two halves against each other: orphan secrets directories, and registered bots
/// missing required secrets.
fn check_consistency(
    store: &dyn BotRepository,
    subject: &str,
    secrets: &SecretsStore,
    fix: bool,
    report: &mut DoctorReport,
) {
    // Quarantining compares the rows with the directories and moves directories: hold
    // the lock exclusive so that no create (directory before row) or delete (row
    // before directory) is half done while the rows and directories are listed and
    // moved. Both lists are taken under it. A report without `fix` takes no lock.
    let lock = if fix {
        match secrets.lock(LockMode::Exclusive) {
            Ok(held) => Some(held),
            Err(e) => {
                report.push(
                    FindingKind::SecretsRoot,
                    secrets.root_path().display().to_string(),
                    format!("cannot lock the secrets store to repair it: {e}"),
                    false,
                );
                return;
            }
        }
    } else {
        None
    };
    let rows = match store.list(None) {
        Ok(rows) => rows,
        Err(e) => {
            report.push(FindingKind::Database, subject, e.to_string(), false);
            return;
        }
    };
    let here = secrets.root_id();
    let elsewhere = |b: &botmaker_domain::Bot| b.secrets_root.is_some_and(|r| r != here);
    report.held_elsewhere = rows.iter().filter(|b| elsewhere(b)).count();
    report.bots_checked = rows.len() - report.held_elsewhere;
    let registered: BTreeSet<BotId> = rows.iter().map(|b| b.id).collect();
    let mut dirs_here = BTreeSet::new();
    match secrets.bots() {
        Ok(dirs) => {
            report_stale_copies(&rows, &dirs, here, report);
            dirs_here.extend(dirs.iter().copied());
            for id in dirs.into_iter().filter(|id| !registered.contains(id)) {
                let detail = "secrets directory of a bot that is not in the database";
                let (detail, fixed) = match fix.then(|| secrets.quarantine_bot(&id)) {
                    None => (
                        format!("{detail} (--fix moves it into the quarantine)"),
                        false,
                    ),
                    Some(Ok(to)) => (format!("{detail}; moved to {to}"), true),
                    Some(Err(e)) => (format!("{detail}; quarantine failed: {e}"), false),
                };
                report.push(FindingKind::OrphanSecrets, id.to_string(), detail, fixed);
            }
        }
        Err(e) => {
            report.push(
                FindingKind::SecretsRoot,
                secrets.root_path().display().to_string(),
                e.to_string(),
                false,
            );
        }
    }
    // Bots from before placements were recorded whose directory is here: this root
    // holds their secrets. Adopted under the lock, like the other repairs.
    let lost = if fix {
        adopt_legacy(store, &rows, &dirs_here, here, report)
    } else {
        BTreeSet::new()
    };
    // Released before the per-bot checks, which only read: creators wait for the
    // listing and the moves, not for a walk of every bot directory.
    drop(lock);
    for bot in rows
        .iter()
        .filter(|b| !elsewhere(b) && !lost.contains(&b.id))
    {
        let subject = format!("{} ({})", bot.name, bot.id);
        // The bot's own rule (it depends on the provider), so an `ollama` bot is not
        // called unhealthy for lacking an API key it cannot have.
        match crate::botmaker::missing_secrets(secrets, bot) {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                let names: Vec<&str> = missing.iter().map(SecretName::as_str).collect();
                let detail = format!(
                    "missing required secrets: {} (set them with `botmaker secret set`)",
                    names.join(", ")
                );
                report.push(FindingKind::MissingSecrets, subject, detail, false);
            }
            Err(e) => report.push(FindingKind::MissingSecrets, subject, e.to_string(), false),
        }
    }
}

/// Directories here of bots that the registry places in another root: stale copies,
/// reported and left alone.
fn report_stale_copies(
    rows: &[botmaker_domain::Bot],
    dirs: &[BotId],
    here: SecretsRootId,
    report: &mut DoctorReport,
) {
    for bot in rows.iter().filter(|b| dirs.contains(&b.id)) {
        let Some(held_by) = bot.secrets_root.filter(|r| *r != here) else {
            continue;
        };
        report.push(
            FindingKind::StaleSecrets,
            format!("{} ({})", bot.name, bot.id),
            format!(
                "this secrets root ({here}) has a directory for a bot whose secrets the \
                 registry places in secrets root {held_by}: a stale copy, never used here; \
                 compare it with the copy on that host, then remove it by hand"
            ),
            false,
        );
    }
}

/// `--fix`: records this root for every bot without one whose directory is here
/// (reported as fixed). Returns the bots another host adopted first (counted as held
/// elsewhere, not checked here).
fn adopt_legacy(
    store: &dyn BotRepository,
    rows: &[botmaker_domain::Bot],
    dirs_here: &BTreeSet<BotId>,
    here: SecretsRootId,
    report: &mut DoctorReport,
) -> BTreeSet<BotId> {
    let mut lost = BTreeSet::new();
    for bot in rows
        .iter()
        .filter(|b| b.secrets_root.is_none() && dirs_here.contains(&b.id))
    {
        let subject = format!("{} ({})", bot.name, bot.id);
        match store.adopt_secrets_root(&bot.id, &here) {
            Ok(stored) if stored.secrets_root == Some(here) => report.push(
                FindingKind::Database,
                subject,
                format!(
                    "no secrets root was recorded (registered before schema V3); recorded \
                     this one ({here}), which holds its directory"
                ),
                true,
            ),
            // Another host adopted it meanwhile: its directory here is a stale copy
            // (reported by the next run), and it is not checked here.
            Ok(_) => {
                lost.insert(bot.id);
                report.held_elsewhere += 1;
                report.bots_checked -= 1;
            }
            Err(e) => report.push(FindingKind::Database, subject, e.to_string(), false),
        }
    }
    lost
}
