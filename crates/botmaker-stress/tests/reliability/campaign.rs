//! A short run of every part of `cargo xtask stress`: the same code, bounded by time
//! and by a minimum number of rounds, so what is asserted does not depend on the
//! machine's speed.

use std::time::Duration;

use botmaker_stress::common::{ChildBinary, Deadline, Tally, payload};
use botmaker_stress::{
    contention, db_crash, facade_crash, hostile, pg_crash, secrets_crash, symlink_race,
};
use botmaker_testkit::rng::Rng;

/// The children are this package's child binary, which cargo builds for its tests.
fn child_binary() -> ChildBinary {
    ChildBinary::at(env!("CARGO_BIN_EXE_botmaker-stress-child"))
}

#[track_caller]
fn assert_clean(t: &Tally) {
    println!("{t}");
    assert_eq!(t.failures, 0, "{t}");
}

/// A protocol line is found even after other output on the same line (a child's
/// stdout is shared with whatever its libraries print).
#[test]
fn protocol_lines_survive_other_output_on_the_same_line() {
    assert_eq!(payload("test campaign::x ... @@ ready"), Some("ready"));
    assert_eq!(payload("@@ B w 1 2 3"), Some("B w 1 2 3"));
    assert_eq!(payload("running 1 test"), None);
}

#[test]
fn secret_writer_killed_at_random_points_loses_nothing() {
    let mut rng = Rng::new(crate::seed());
    let t = secrets_crash::run(
        &child_binary(),
        Deadline::at_least(Duration::from_secs(2), 25),
        &mut rng,
        5,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.kills >= 20, "{t}");
    assert!(t.get("doctor-runs") >= 5, "{t}");
}

#[test]
fn database_writer_killed_at_random_points_loses_nothing() {
    let mut rng = Rng::new(crate::seed());
    let t = db_crash::run(
        &child_binary(),
        Deadline::at_least(Duration::from_secs(2), 25),
        &mut rng,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.kills >= 20, "{t}");
    assert!(t.checks >= 50, "{t}");
}

#[test]
fn postgres_writer_killed_at_random_points_and_a_server_restart_lose_nothing() {
    let mut rng = Rng::new(crate::seed());
    let t = pg_crash::run(
        &child_binary(),
        Deadline::at_least(Duration::from_secs(3), 20),
        &mut rng,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.kills >= 15, "{t}");
    assert_eq!(t.get("server-restarts"), 1, "{t}");
    assert!(t.checks >= 40, "{t}");
}

#[test]
fn facade_writer_killed_at_random_points_leaves_only_what_the_doctor_repairs() {
    let mut rng = Rng::new(crate::seed());
    let t = facade_crash::run(
        &child_binary(),
        Deadline::at_least(Duration::from_secs(2), 20),
        &mut rng,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.kills >= 15, "{t}");
    assert!(t.get("doctor-runs") >= 20, "{t}");
}

#[test]
fn eight_processes_and_eight_threads_never_see_busy() {
    let mut rng = Rng::new(crate::seed());
    let t = contention::run(
        &child_binary(),
        Deadline::after(Duration::from_secs(3)),
        &mut rng,
    )
    .unwrap();
    assert_clean(&t);
    assert_eq!(t.get("busy-errors"), 0, "{t}");
    assert_eq!(t.get("processes"), 8);
}

#[test]
fn hostile_input_through_the_library() {
    let mut rng = Rng::new(crate::seed());
    let t = hostile::run_library(
        Deadline::at_least(Duration::from_secs(2), 3_000),
        &mut rng,
        250,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.get("inputs") >= 3_000, "{t}");
}

#[test]
fn symlink_swap_race_never_escapes_the_root() {
    let t = symlink_race::run(Deadline::at_least(Duration::from_secs(2), 2_000)).unwrap();
    assert_clean(&t);
    assert!(t.get("iterations") >= 2_000, "{t}");
    assert!(t.get("exchanges") > 0, "{t}");
}
