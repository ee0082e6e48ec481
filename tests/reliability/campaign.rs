//! A short run of every part of `cargo xtask stress`: the same code, bounded by time
//! and by a minimum number of rounds, so what is asserted does not depend on the
//! machine's speed.

use std::time::Duration;

use crate::stress::common::{ARG_SEPARATOR, Deadline, Launcher, Tally, payload};
use crate::stress::rng::Rng;
use crate::stress::{contention, db_crash, facade_crash, hostile, secrets_crash, symlink_race};

const CHILD_ENV: &str = "BOTMAKER_RELIABILITY_STRESS_CHILD";

fn launcher() -> Launcher {
    Launcher::test_binary("campaign::stress_child_or_protocol", CHILD_ENV).unwrap()
}

#[track_caller]
fn assert_clean(t: &Tally) {
    println!("{t}");
    assert_eq!(t.failures, 0, "{t}");
}

/// In a child (the variable set): one of the campaign's children. In a normal run: the
/// line protocol survives the test harness's own output on the same line.
#[test]
fn stress_child_or_protocol() {
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let args: Vec<String> = args.split(ARG_SEPARATOR).map(str::to_owned).collect();
        crate::stress::child(&args).unwrap();
        return;
    }
    assert_eq!(payload("test campaign::x ... @@ ready"), Some("ready"));
    assert_eq!(payload("@@ B w 1 2 3"), Some("B w 1 2 3"));
    assert_eq!(payload("running 1 test"), None);
}

#[test]
fn secret_writer_killed_at_random_points_loses_nothing() {
    let mut rng = Rng::new(crate::seed());
    let t = secrets_crash::run(
        &launcher(),
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
        &launcher(),
        Deadline::at_least(Duration::from_secs(2), 25),
        &mut rng,
    )
    .unwrap();
    assert_clean(&t);
    assert!(t.kills >= 20, "{t}");
    assert!(t.checks >= 50, "{t}");
}

#[test]
fn facade_writer_killed_at_random_points_leaves_only_what_the_doctor_repairs() {
    let mut rng = Rng::new(crate::seed());
    let t = facade_crash::run(
        &launcher(),
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
        &launcher(),
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
