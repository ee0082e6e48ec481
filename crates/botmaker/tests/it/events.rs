//! The events an operator reads: the writer's WAL checkpoints, each timed.

use botmaker::domain::BotRepository;
use botmaker::sqlite::SqliteStore;
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::new_bot;
use crate::redaction::Capture;

#[test]
fn the_writer_checkpoints_the_wal_and_reports_each_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&path).unwrap();
    let capture = Capture::default();
    let subscriber = Registry::default().with(capture.clone());
    let store = SqliteStore::open(&path).unwrap();
    // About six WAL pages per insert: 1 500 inserts cross the 1 000-page threshold
    // several times.
    tracing::subscriber::with_default(subscriber, || {
        for k in 0..1500 {
            store.create(&new_bot(&format!("bot-{k}"))).unwrap();
        }
    });
    let lines = capture.0.lock().unwrap().clone();
    let checkpoints: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("WAL checkpoint"))
        .collect();
    assert!(
        checkpoints.len() >= 3,
        "expected a checkpoint event per 1 000 WAL pages, got {}: {checkpoints:?}",
        checkpoints.len()
    );
    let field = |line: &str, name: &str| -> u64 {
        let at = line
            .find(&format!(" {name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        let rest = &line[at + name.len() + 2..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    for line in &checkpoints {
        assert!(
            line.contains(" copied=") && line.contains(" wal_frames="),
            "{line}"
        );
        // Only a commit that leaves 1 000 pages or more in the WAL checkpoints.
        assert!(field(line, "pages") >= 1000, "{line}");
        // Warn from 100 ms, debug below: the level follows the time it took.
        let slow = field(line, "elapsed_us") >= 100_000;
        assert_eq!(line.starts_with("event WARN "), slow, "{line}");
        assert_eq!(line.contains("slow WAL checkpoint"), slow, "{line}");
    }
    // The checkpoints did their work: the WAL is reused from its start instead of
    // growing with every insert (without them it would hold ~9 000 pages, 37 MB).
    let wal = std::fs::metadata(format!("{}-wal", path.display()))
        .unwrap()
        .len();
    assert!(wal < 2 * 1100 * 4120, "WAL grew to {wal} bytes");
    drop(store);
}
