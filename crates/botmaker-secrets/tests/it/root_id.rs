//! The secrets root's identity file `<root>/.root-id`: made once, agreed on by
//! concurrent first opens (threads and processes), read with the checks of a secret,
//! and never replaced when it is bad.

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::sync::{Arc, Barrier};

use botmaker_domain::SecretsRootId;
use botmaker_secrets::{SecretsError, SecretsStore};

use crate::common::{Canary, entries, run_child};

const ID_FILE: &str = ".root-id";
const ROOT_ENV: &str = "BOTMAKER_SECRETS_TEST_ID_ROOT";

fn stored_id(root: &Path) -> SecretsRootId {
    let text = std::fs::read_to_string(root.join(ID_FILE)).unwrap();
    let line = text
        .strip_suffix('\n')
        .expect("the id file ends with a newline");
    SecretsRootId::parse(line).unwrap()
}

#[test]
fn concurrent_first_opens_by_threads_agree_on_one_id() {
    for _ in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let ids: Vec<SecretsRootId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    let root = root.clone();
                    s.spawn(move || {
                        barrier.wait();
                        SecretsStore::open(&root).unwrap().root_id()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let file = stored_id(&root);
        assert!(ids.iter().all(|id| *id == file), "{ids:?} vs {file}");
        // No temporary file of a losing opener is left.
        assert_eq!(entries(&root), [ID_FILE]);
        let meta = std::fs::symlink_metadata(root.join(ID_FILE)).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.nlink()), (0o600, 1));
    }
}

/// With the variable set: a child that opens the root and prints its id. Without it
/// (a normal run), the test itself: processes opening one fresh root at once.
#[test]
fn concurrent_first_opens_by_processes_agree_on_one_id() {
    if let Ok(root) = std::env::var(ROOT_ENV) {
        let store = SecretsStore::open(Path::new(&root)).unwrap();
        println!("root-id={}", store.root_id());
        return;
    }
    for _ in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        let root_text = root.to_str().unwrap().to_owned();
        let outputs: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let root_text = root_text.clone();
                    s.spawn(move || {
                        let out = run_child(
                            "root_id::concurrent_first_opens_by_processes_agree_on_one_id",
                            &[(ROOT_ENV, &root_text)],
                        );
                        String::from_utf8_lossy(&out.stdout).into_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let file = stored_id(&root);
        for out in &outputs {
            assert!(out.contains(&format!("root-id={file}")), "{out}");
        }
        assert_eq!(entries(&root), [ID_FILE]);
    }
}

#[test]
fn a_symlink_at_the_id_file_is_refused_and_nothing_outside_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new(tmp.path().join("outside"));
    let root = tmp.path().join("secrets");
    drop(SecretsStore::open(&root).unwrap());
    std::fs::remove_file(root.join(ID_FILE)).unwrap();
    symlink(canary.file(), root.join(ID_FILE)).unwrap();
    let err = SecretsStore::open(&root).unwrap_err();
    assert!(
        matches!(&err, SecretsError::Symlink { path } if *path == root.join(ID_FILE)),
        "{err:?}"
    );
    // The link is left as it is: never replaced, never followed.
    assert!(
        std::fs::symlink_metadata(root.join(ID_FILE))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(entries(&root), [ID_FILE]);
    canary.check();
}

#[test]
fn garbage_in_the_id_file_is_refused_naming_it_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let good = SecretsStore::open(&root).unwrap().root_id();
    let file = root.join(ID_FILE);
    let upper = format!("{}\n", good.to_string().to_uppercase());
    let no_newline = good.to_string();
    let two_lines = format!("{good}\n{good}\n");
    for garbage in [
        b"not an id\n".as_slice(),
        b"".as_slice(),
        upper.as_bytes(),
        no_newline.as_bytes(),
        two_lines.as_bytes(),
        b"\xff\xfe\n".as_slice(),
    ] {
        std::fs::write(&file, garbage).unwrap();
        let err = SecretsStore::open(&root).unwrap_err();
        assert!(
            matches!(&err, SecretsError::InvalidRootId { path, .. } if *path == file),
            "{garbage:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(file.to_str().unwrap()), "{message}");
        assert!(message.contains("never replaced"), "{message}");
        assert_eq!(std::fs::read(&file).unwrap(), garbage, "left untouched");
        assert_eq!(entries(&root), [ID_FILE]);
    }
}

#[test]
fn a_fifo_or_a_directory_at_the_id_name_is_refused_without_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    drop(SecretsStore::open(&root).unwrap());
    let file = root.join(ID_FILE);
    std::fs::remove_file(&file).unwrap();
    nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = SecretsStore::open(&root).unwrap_err();
    assert!(
        matches!(err, SecretsError::NotRegularFile { .. }),
        "{err:?}"
    );
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let err = SecretsStore::open(&root).unwrap_err();
    assert!(
        matches!(err, SecretsError::NotRegularFile { .. }),
        "{err:?}"
    );
    assert!(std::fs::symlink_metadata(&file).unwrap().is_dir());
}

#[test]
fn a_hard_linked_id_file_is_refused_and_the_audit_reports_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    drop(SecretsStore::open(&root).unwrap());
    let file = root.join(ID_FILE);
    std::fs::hard_link(&file, tmp.path().join("elsewhere")).unwrap();
    let err = SecretsStore::open(&root).unwrap_err();
    assert!(
        matches!(err, SecretsError::HardLinked { nlink: 2, .. }),
        "{err:?}"
    );
    std::fs::remove_file(tmp.path().join("elsewhere")).unwrap();

    // A store open while the mode drifts: the audit reports it, the repair fixes it
    // with fchmod, and the id stays.
    let store = SecretsStore::open(&root).unwrap();
    let id = store.root_id();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let audit = store.audit().unwrap();
    assert_eq!(audit.findings.len(), 1, "{audit}");
    assert_eq!(audit.findings[0].path, ID_FILE);
    let repaired = store.repair().unwrap();
    assert!(repaired.findings.iter().all(|f| f.repaired), "{repaired}");
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(SecretsStore::open(&root).unwrap().root_id(), id);
}

#[test]
fn a_leftover_temporary_file_of_the_creation_is_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let id = SecretsStore::open(&root).unwrap().root_id();
    // What a process killed between its write and its rename leaves (a pid that
    // does not exist).
    std::fs::write(root.join(".tmp-999999999-0000000000000000-0"), b"x").unwrap();
    let store = SecretsStore::open(&root).unwrap();
    assert_eq!(store.swept(), 1);
    assert_eq!(store.root_id(), id);
    assert_eq!(entries(&root), [ID_FILE]);
}
