//! The password of the connection string never shows: not in `Debug` or `Display` of
//! the url, the store or any error, and not in any span or event, captured at TRACE
//! level while a store is opened, used, refused and fails.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use botmaker_domain::{BotRepository, BotStatus};
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore, migrate, migration_status};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::support::{empty_db, id, new_bot};

const PASSWORD: &str = "hunter2-Pw0rd";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = format!("event {}", event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn the_password_never_shows() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(capture.clone()));
    let mut shown: Vec<String> = Vec::new();

    // The test server trusts local sockets: a password in the string is accepted and
    // unused, which is what this test needs (it must reach every code path).
    let (db, _) = empty_db("redaction");
    let with_password = format!("{} password={PASSWORD}", db.url());
    let url = DatabaseUrl::parse(&with_password).unwrap();
    shown.push(format!("{url} {url:?} {}", url.host()));
    shown.push(format!(
        "{:?}",
        PgStore::open(&url, PgOptions::default()).unwrap_err()
    ));
    shown.push(format!(
        "{}",
        PgStore::open(&url, PgOptions::default()).unwrap_err()
    ));
    let report = migrate(&url).unwrap();
    shown.push(format!("{report} {report:?}"));
    let status = migration_status(&url).unwrap();
    shown.push(format!("{status} {status:?}"));
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    shown.push(format!("{store:?}"));
    let bot = store.create(&new_bot("redacted")).unwrap();
    for e in [
        store.create(&new_bot("redacted")).unwrap_err(),
        store.get(&id(99)).unwrap_err(),
        store.set_status(&bot.id, BotStatus::Running).unwrap_err(),
    ] {
        shown.push(format!("{e} {e:?}"));
    }
    // A url form and a server that is not there.
    let down =
        DatabaseUrl::parse(&format!("postgres://bm:{PASSWORD}@127.0.0.1:1/registry")).unwrap();
    shown.push(format!("{down} {down:?}"));
    let e = PgStore::open(&down, PgOptions::default()).unwrap_err();
    shown.push(format!("{e} {e:?}"));
    let e = migrate(&down).unwrap_err();
    shown.push(format!("{e} {e:?}"));
    // A bad string.
    let e = DatabaseUrl::parse(&format!(
        "host=h bogus_option={PASSWORD} password={PASSWORD}"
    ))
    .unwrap_err();
    shown.push(format!("{e} {e:?}"));

    let captured = capture.0.lock().unwrap().clone();
    assert!(captured.len() > 10, "the store emitted spans: {captured:?}");
    assert!(
        captured.iter().any(|l| l.contains("backend=postgres")),
        "{captured:?}"
    );
    for line in shown.iter().chain(&captured) {
        assert!(!line.contains(PASSWORD), "the password shows in: {line}");
        assert!(!line.contains("hunter2"), "the password shows in: {line}");
    }
    assert!(shown[0].contains("password=<redacted>"), "{}", shown[0]);
}
