//! `botmaker-bench --database-url URL --raw` at a tiny N on the test kit's throwaway
//! server: every phase and ratio line is printed, the scratch databases are dropped,
//! and the URL's password appears nowhere.

use std::process::Command;

use botmaker_testkit::pg;

const PHASES: [&str; 8] = [
    "insert",
    "get_by_id",
    "get_by_name",
    "list_all",
    "update_status",
    "delete",
    "parallel_get_by_id",
    "parallel_insert",
];

const PASSWORD: &str = "s3cret-bench-pw";

fn scratch_databases(db: &pg::TestDatabase) -> Vec<String> {
    db.client()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'bm\\_bench\\_%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .filter(|name: &String| name.contains(&format!("_{}_", std::process::id())))
        .collect()
}

#[test]
fn the_postgres_run_prints_every_phase_and_ratio_and_drops_its_databases() {
    let db = pg::shared().database("bench");
    // The server trusts local connections: the password is carried, never needed.
    let url = format!("{} password={PASSWORD}", db.url());
    let out = Command::new(env!("CARGO_BIN_EXE_botmaker-bench"))
        .args([
            "--n",
            "60",
            "--threads",
            "2",
            "--raw",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines[0];
    assert!(header.contains("\"backend\":\"postgres\""), "{header}");
    // PostgreSQL's defaults, as the test server keeps them.
    assert!(header.contains("\"fsync\":\"on\""), "{header}");
    assert!(header.contains("\"synchronous_commit\":\"on\""), "{header}");
    for phase in PHASES {
        for variant in ["api", "raw"] {
            let needle = format!("{{\"phase\":\"{phase}\",\"variant\":\"{variant}\",");
            assert!(
                lines.iter().any(|l| l.starts_with(&needle)),
                "no {variant} line for {phase}:\n{stdout}"
            );
        }
        let ratio = format!("{{\"phase\":\"{phase}\",\"ratio_api_over_raw\":");
        assert!(
            lines.iter().any(|l| l.starts_with(&ratio)),
            "no ratio line for {phase}:\n{stdout}"
        );
    }
    assert!(
        lines.iter().any(
            |l| l.starts_with("{\"scaling\":{\"parallel_get_by_id_over_get_by_id\":")
                && l.contains("\"parallel_insert_over_insert\":")
        ),
        "no scaling line:\n{stdout}"
    );
    // The secrets and async parts are skipped on PostgreSQL.
    assert!(!stdout.contains("secret_write"), "{stdout}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    assert_eq!(scratch_databases(&db), Vec::<String>::new());
}

#[test]
fn an_unreachable_server_fails_naming_it_without_the_password() {
    let dir = botmaker_testkit::scratch::Scratch::new("bench-no-server").unwrap();
    let url = format!(
        "host={} user=postgres dbname=postgres password={PASSWORD} connect_timeout=2",
        dir.path().display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_botmaker-bench"))
        .args(["--n", "10", "--database-url", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("connecting to host="), "{stderr}");
    assert!(
        stderr.contains("password=<redacted>") || !stderr.contains("password"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stderr}"
    );
}
