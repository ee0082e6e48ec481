//! Operations of several stores and threads on one root at once: a deletion in
//! progress is never disturbed by another store's open, and a write racing a deletion
//! never makes the deletion fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use botmaker_domain::{BotId, SecretName};
use botmaker_secrets::{SecretsError, SecretsStore};

fn key() -> SecretName {
    "ai_api_key".parse().unwrap()
}

#[test]
fn opening_a_store_never_sweeps_a_deletion_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("secrets");
    let store = SecretsStore::open(&root).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let opener = {
        let (root, done) = (root.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut opens = 0u32;
            while !done.load(Ordering::Relaxed) {
                let other = SecretsStore::open(&root).unwrap();
                assert_eq!(other.swept(), 0, "a live deletion's trash was swept");
                drop(other);
                opens += 1;
            }
            opens
        })
    };
    for _ in 0..300 {
        let bot = BotId::generate();
        for i in 0..4 {
            let name: SecretName = format!("s{i}").parse().unwrap();
            store.write(&bot, &name, b"value").unwrap();
        }
        store.delete_bot(&bot).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(opener.join().unwrap() > 0);
    assert!(
        store.audit().unwrap().is_clean(),
        "{}",
        store.audit().unwrap()
    );
}

#[test]
fn a_write_racing_a_deletion_never_makes_the_deletion_fail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SecretsStore::open(&dir.path().join("secrets")).unwrap());
    for _ in 0..200 {
        let bot = BotId::generate();
        store.write(&bot, &key(), b"first").unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let writer = {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..20 {
                    match store.write(&bot, &key(), b"again") {
                        // Linearized before the deletion, or refused because of it.
                        Ok(())
                        | Err(SecretsError::Raced { .. } | SecretsError::BotNotFound { .. }) => {}
                        Err(e) => panic!("write racing a deletion: {e}"),
                    }
                }
            })
        };
        barrier.wait();
        store.delete_bot(&bot).unwrap();
        writer.join().unwrap();
        // The writer may have recreated the bot after the deletion; clean that up.
        match store.delete_bot(&bot) {
            Ok(()) | Err(SecretsError::BotNotFound { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let report = store.audit().unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(store.bots().unwrap().is_empty());
}
