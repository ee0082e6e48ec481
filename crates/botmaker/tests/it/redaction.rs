//! No secret value ever reaches `tracing`: every span and event field of a full
//! session, captured at TRACE level from every crate, is searched for the values
//! written.

use std::fmt::{self, Write as _};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::{Arc, Mutex};

use botmaker::domain::{BotRepository, MemoryRepository, SecretName};
use botmaker::secrets::{SecretsError, SecretsStore};
use botmaker::{Botmaker, Error};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::{DB_PASSWORD, Install, new_bot};

/// Every span (with its fields, and the fields recorded later) and every event, as
/// `target name field=value…` lines.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        let mut line = format!("span {} {} {}", meta.level(), meta.target(), meta.name());
        attrs.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = format!("event {} {}", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

/// Distinctive values: the string, and the byte list a `Debug` of the bytes prints.
fn forms(value: &[u8]) -> Vec<String> {
    vec![
        String::from_utf8_lossy(value).into_owned(),
        format!("{value:?}")
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned(),
    ]
}

#[test]
fn no_secret_value_reaches_any_span_or_event() {
    session(Install::new, "botmaker_sqlite");
}

/// The same session on PostgreSQL, with a password in the connection string: neither a
/// secret value nor the password reaches any span or event.
#[test]
fn no_secret_value_nor_the_database_password_reaches_any_span_or_event_on_postgres() {
    let lines = session(Install::postgres, "botmaker_postgres");
    let all = lines.join("\n");
    assert!(
        all.contains("password=<redacted>"),
        "the registry is never named:\n{all}"
    );
    assert!(
        !all.contains(DB_PASSWORD),
        "the database password reached tracing:\n{all}"
    );
}

/// A full session on the installation `install` makes (made once the capture is on,
/// so migrating is captured too), every span and event captured; asserts no secret
/// value appears, and that `store_target`'s spans were captured. Returns the lines.
#[allow(clippy::too_many_lines)] // one session, start to end, reads best in one piece
fn session(install: fn() -> Install, store_target: &str) -> Vec<String> {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(Registry::default().with(capture.clone())).unwrap();

    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut value = |tag: &str| {
        let v = format!("SeCrEt-{tag}-q8Zr4Kx1").into_bytes();
        written.push(v.clone());
        v
    };
    let install = install();
    let bm = install.open();
    let key: SecretName = "ai_api_key".parse().unwrap();
    let token: SecretName = "channel_token".parse().unwrap();
    let config: SecretName = "channel_config".parse().unwrap();

    // Create with secrets, set, rotate, read, list, remove, delete.
    let (k, t) = (value("create-key"), value("create-token"));
    let bot = bm
        .create_bot(
            &new_bot("alpha"),
            &[(key.clone(), k.as_slice()), (token.clone(), t.as_slice())],
        )
        .unwrap();
    bm.set_secret(&bot, &config, &value("set-config")).unwrap();
    bm.rotate_secret(&bot, &key, &value("rotated-key")).unwrap();
    assert!(
        bm.get_secret(&bot, &key)
            .unwrap()
            .expose()
            .starts_with(b"SeCrEt")
    );
    assert_eq!(bm.list_secrets(&bot).unwrap().len(), 3);
    // A bot's secrets in one call, both ways.
    assert_eq!(
        bm.get_secrets(&bot, &[key.clone(), token.clone(), config.clone()])
            .unwrap()
            .len(),
        3
    );
    assert_eq!(bm.get_all_secrets(&bot).unwrap().len(), 3);
    bm.remove_secret(&bot, &config).unwrap();
    assert_eq!(bm.missing_secrets(&bot).unwrap(), vec![config.clone()]);
    let beta = bm.create_bot(&new_bot("beta"), &[]).unwrap();
    bm.delete_bot(&beta).unwrap();

    // Errors: a taken name, a rotation of a missing secret, a value over the cap, a
    // bad name, a symlink planted at a secret, a secret with a bad mode.
    let duplicate = value("taken-name");
    assert!(
        bm.create_bot(&new_bot("alpha"), &[(key.clone(), &duplicate)])
            .is_err()
    );
    assert!(
        bm.rotate_secret(&bot, &config, &value("rotate-missing"))
            .is_err()
    );
    let mut huge = value("too-large");
    huge.resize(70 * 1024, b'Z');
    assert!(bm.set_secret(&bot, &token, &huge).is_err());
    assert!("../etc/passwd".parse::<SecretName>().is_err());
    let bot_dir = install.config.secrets_dir().join(bot.id.to_string());
    let outside = install.config.secrets_dir().with_file_name("outside");
    std::fs::write(&outside, b"canary").unwrap();
    symlink(&outside, bot_dir.join("channel_config")).unwrap();
    let refused = bm.get_secret(&bot, &config).unwrap_err();
    assert!(
        matches!(refused, Error::Secrets(SecretsError::Symlink { .. })),
        "{refused}"
    );
    std::fs::set_permissions(
        bot_dir.join("channel_token"),
        PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let refused = bm.get_secret(&bot, &token).unwrap_err();
    assert!(
        matches!(refused, Error::Secrets(SecretsError::InsecureMode { .. })),
        "{refused}"
    );

    // The doctor: findings, then a fix (the mode is repaired; the symlink reported).
    let report = Botmaker::doctor(&install.config, false);
    assert!(!report.is_healthy());
    let fixed = Botmaker::doctor(&install.config, true);
    assert!(fixed.findings.iter().any(|f| f.fixed), "{fixed}");
    drop(bm);

    // The secrets store alone (a sweep on open), and the domain's in-memory registry.
    std::fs::write(
        install
            .config
            .secrets_dir()
            .join(bot.id.to_string())
            .join(".tmp-leftover"),
        b"x",
    )
    .ok();
    let store = SecretsStore::open(install.config.secrets_dir()).unwrap();
    store.write(&bot.id, &token, &value("store-alone")).unwrap();
    let memory = MemoryRepository::new();
    let row = memory.create(&new_bot("gamma")).unwrap();
    memory.get(&row.id).unwrap();
    assert!(memory.create(&new_bot("gamma")).is_err());
    memory.delete(&row.id).unwrap();

    // The async adapter too, when it is built.
    #[cfg(feature = "tokio")]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let abm = botmaker::aio::AsyncBotmaker::open(&install.config);
        let abm = rt.block_on(abm).unwrap();
        let async_value = value("async-set");
        rt.block_on(abm.set_secret(
            &bot,
            &key,
            botmaker::secrets::SecretValue::from_bytes(&async_value),
        ))
        .unwrap();
        let read = rt.block_on(abm.get_secret(&bot, &key)).unwrap();
        assert_eq!(read.expose(), async_value.as_slice());
    }

    // The detector's self-test: a field planted on purpose must be found, or the
    // search below could pass by capturing nothing of the fields.
    tracing::trace!(planted = "CaNaRy-q8Zr4Kx1", "detector self-test");
    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("planted=CaNaRy-q8Zr4Kx1")),
        "the capture misses field values"
    );
    assert!(lines.len() > 50, "too little captured: {lines:#?}");
    for target in [
        "botmaker_domain",
        store_target,
        "botmaker_secrets",
        "botmaker::",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("span") && l.contains(&format!(" {target}"))),
            "no span from {target}"
        );
    }
    for needle in [
        "migration applied",
        "doctor finding",
        "doctor repaired",
        "refused an unsafe entry",
        "secrets store drift",
        "outcome=error",
        "outcome=ok",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "nothing captured says {needle:?}"
        );
    }
    let all = lines.join("\n");
    for v in &written {
        for form in forms(v) {
            assert!(
                !all.contains(&form),
                "a secret value reached tracing ({form}):\n{all}"
            );
        }
    }
    // The distinctive prefix alone, in case a value was cut.
    assert!(!all.contains("SeCrEt"), "{all}");
    lines
}
