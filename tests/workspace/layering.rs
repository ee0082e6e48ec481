//! The layering invariants of ARCHITECTURE.md, checked on the real dependency graph.

use std::process::Command;

use crate::root;

/// `cargo tree` of one package with the given extra arguments: the crate names only.
fn tree(args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_absent(crates: &[String], forbidden: &[&str], what: &str) {
    assert!(
        crates.len() > 1,
        "{what}: cargo tree printed too little: {crates:?}"
    );
    for f in forbidden {
        assert!(
            !crates.iter().any(|c| c == f),
            "{what} must not depend on {f}: {crates:?}"
        );
    }
}

#[test]
fn the_domain_crate_does_no_io() {
    let crates = tree(&["-p", "botmaker-domain", "--all-features"]);
    assert!(crates.iter().any(|c| c == "uuid"));
    assert_absent(
        &crates,
        &["rusqlite", "libsqlite3-sys", "refinery", "nix", "secrecy"],
        "botmaker-domain",
    );
}

#[test]
fn the_secrets_crate_does_not_link_sqlite() {
    let crates = tree(&["-p", "botmaker-secrets", "--all-features"]);
    assert!(crates.iter().any(|c| c == "nix"));
    assert_absent(
        &crates,
        &["rusqlite", "libsqlite3-sys", "refinery"],
        "botmaker-secrets",
    );
}

/// The crates of each registry backend: a build of the facade for one backend
/// compiles none of another's.
const SQLITE_CRATES: [&str; 4] = ["rusqlite", "libsqlite3-sys", "refinery", "botmaker-sqlite"];
/// SQLite itself, for builds that use refinery with its postgres driver.
const SQLITE_ONLY: [&str; 3] = ["rusqlite", "libsqlite3-sys", "botmaker-sqlite"];
const POSTGRES_CRATES: [&str; 3] = ["postgres", "tokio-postgres", "botmaker-postgres"];

#[test]
fn each_facade_build_compiles_only_its_own_backend() {
    // (features, a crate it must have, the crates it must not). The facade holds the
    // registry as a trait object, so `Botmaker` needs only `secrets`: a service with
    // its own store, or on PostgreSQL (`secrets,postgres`), compiles no SQLite; and an
    // SQLite build compiles no PostgreSQL client.
    for (features, has, lacks) in [
        ("secrets", "botmaker-secrets", &SQLITE_CRATES[..]),
        ("secrets,postgres", "botmaker-postgres", &SQLITE_ONLY[..]),
        ("postgres", "postgres", &SQLITE_ONLY[..]),
        ("sqlite,secrets", "rusqlite", &POSTGRES_CRATES[..]),
        (
            "sqlite,secrets,backup,tokio",
            "rusqlite",
            &POSTGRES_CRATES[..],
        ),
    ] {
        let crates = tree(&[
            "-p",
            "botmaker",
            "--no-default-features",
            "--features",
            features,
        ]);
        assert!(
            crates.iter().any(|c| c == has),
            "botmaker[{features}] lacks {has}"
        );
        assert_absent(&crates, lacks, &format!("botmaker[{features}]"));
    }
}

#[test]
fn the_sqlite_crate_never_sees_secrets_code() {
    let crates = tree(&["-p", "botmaker-sqlite"]);
    assert!(crates.iter().any(|c| c == "rusqlite"));
    assert_absent(
        &crates,
        &["botmaker-secrets", "secrecy", "nix"],
        "botmaker-sqlite",
    );
}

#[test]
fn the_postgres_crate_does_not_compile_sqlite() {
    let crates = tree(&["-p", "botmaker-postgres", "--all-features"]);
    assert!(crates.iter().any(|c| c == "postgres"));
    assert!(crates.iter().any(|c| c == "refinery"));
    assert_absent(
        &crates,
        &[
            "rusqlite",
            "libsqlite3-sys",
            "botmaker-sqlite",
            "botmaker-secrets",
            "secrecy",
            "nix",
        ],
        "botmaker-postgres",
    );
}

#[test]
fn the_sqlite_crate_does_not_compile_postgres() {
    let crates = tree(&["-p", "botmaker-sqlite", "--all-features"]);
    assert!(crates.iter().any(|c| c == "refinery"));
    assert_absent(
        &crates,
        &[
            "postgres",
            "tokio-postgres",
            "postgres-protocol",
            "botmaker-postgres",
        ],
        "botmaker-sqlite",
    );
}

#[test]
fn the_sync_facade_compiles_no_tokio() {
    // The default features, and each half alone: the async adapter is the `tokio`
    // feature's, and a sync user compiles no runtime.
    for features in [
        &[][..],
        &["--no-default-features", "--features", "secrets"],
        // Not `postgres`: the synchronous `postgres` client runs tokio-postgres on a
        // runtime of its own, inside the crate.
        &["--no-default-features", "--features", "sqlite"],
    ] {
        let mut args = vec!["-p", "botmaker"];
        args.extend_from_slice(features);
        let crates = tree(&args);
        assert!(crates.iter().any(|c| c == "tracing"));
        assert_absent(
            &crates,
            &["tokio", "tokio-macros"],
            "botmaker without `tokio`",
        );
    }
    let with = tree(&["-p", "botmaker", "--features", "tokio"]);
    assert!(
        with.iter().any(|c| c == "tokio"),
        "the `tokio` feature adds tokio: {with:?}"
    );
}

#[test]
fn library_crates_emit_tracing_but_install_no_subscriber() {
    // A library only emits; the application (the CLI, a service) chooses the output.
    for krate in [
        "botmaker-domain",
        "botmaker-sqlite",
        "botmaker-postgres",
        "botmaker-secrets",
        "botmaker",
    ] {
        let crates = tree(&["-p", krate, "--all-features"]);
        assert!(
            crates.iter().any(|c| c == "tracing"),
            "{krate} has no tracing"
        );
        assert_absent(&crates, &["tracing-subscriber"], krate);
    }
}

/// The crates a service may depend on: the test kit is never among their normal
/// dependencies (only a dev-dependency of theirs, or a dependency of the harnesses).
const PRODUCT_CRATES: [&str; 6] = [
    "botmaker-domain",
    "botmaker-sqlite",
    "botmaker-postgres",
    "botmaker-secrets",
    "botmaker",
    "botmaker-cli",
];

#[test]
fn no_product_crate_depends_on_the_test_kit() {
    for krate in PRODUCT_CRATES {
        let crates = tree(&["-p", krate, "--all-features"]);
        assert_absent(&crates, &["botmaker-testkit"], krate);
    }
}

#[test]
fn xtask_compiles_no_sqlite_and_none_of_our_crates() {
    // So that `cargo xtask ci` reports `cargo fmt --check` before SQLite compiles.
    let crates = tree(&["-p", "xtask"]);
    assert!(crates.iter().any(|c| c == "clap"));
    let mut forbidden = vec!["libsqlite3-sys", "rusqlite", "botmaker-testkit"];
    forbidden.extend(PRODUCT_CRATES);
    assert_absent(&crates, &forbidden, "xtask");
}

#[test]
fn exactly_one_sqlite_is_linked() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let count = lock
        .lines()
        .filter(|l| *l == "name = \"libsqlite3-sys\"")
        .count();
    assert_eq!(count, 1, "Cargo.lock must hold exactly one libsqlite3-sys");
    let rusqlite = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"rusqlite\"\n"))
        .unwrap();
    assert!(
        rusqlite.contains("version = \"0.41."),
        "rusqlite must stay at the version refinery 0.10 accepts"
    );
}

#[test]
fn every_member_inherits_the_workspace_lints_and_package_fields() {
    for dir in [
        "crates/botmaker-domain",
        "crates/botmaker-sqlite",
        "crates/botmaker-postgres",
        "crates/botmaker-secrets",
        "crates/botmaker",
        "crates/botmaker-cli",
        "crates/botmaker-testkit",
        "crates/botmaker-stress",
        "crates/botmaker-bench",
        "xtask",
        "tests",
    ] {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        for needle in [
            "[lints]\nworkspace = true",
            "edition.workspace = true",
            "license.workspace = true",
            "rust-version.workspace = true",
        ] {
            assert!(
                manifest.contains(needle),
                "{dir}/Cargo.toml lacks `{needle}`"
            );
        }
    }
}
