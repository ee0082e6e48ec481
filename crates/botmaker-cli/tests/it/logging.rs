//! Logging: `-v`/`--verbose` and `RUST_LOG` print the libraries' events on stderr;
//! without them the output is exactly as before; no secret value is ever printed.

use crate::{Env, Run};

const VALUE: &str = "LoGgEd-SeCrEt-5fQ2";
const ROTATED: &str = "LoGgEd-RoTaTeD-9xK7";

/// Runs `args` with `RUST_LOG` set (or not) and `stdin`.
fn run(env: &Env, args: &[&str], rust_log: Option<&str>, stdin: &[u8]) -> Run {
    let mut cmd = env.cmd(args);
    if let Some(directives) = rust_log {
        cmd.env("RUST_LOG", directives);
    }
    crate::run_with_stdin(cmd, stdin)
}

#[test]
fn without_verbose_or_rust_log_stderr_stays_empty() {
    let env = Env::new();
    env.with_bot("alpha");
    let out = run(
        &env,
        &["secret", "set", "alpha", "ai_api_key"],
        None,
        VALUE.as_bytes(),
    );
    out.ok();
    assert_eq!(out.stderr, "");
    // An empty RUST_LOG is no filter at all, as if unset.
    let out = run(&env, &["bot", "list"], Some(""), b"");
    out.ok();
    assert_eq!(out.stderr, "");
}

#[test]
fn trace_logging_changes_no_output_and_prints_no_value() {
    let env = Env::new();
    env.with_bot("alpha");
    let sessions: [(&[&str], &str); 5] = [
        (&["secret", "set", "alpha", "ai_api_key"], VALUE),
        (&["secret", "set", "alpha", "ai_api_key"], ROTATED),
        (&["secret", "get", "alpha", "ai_api_key"], ""),
        (&["secret", "list", "alpha"], ""),
        (&["doctor"], ""),
    ];
    let mut logged = String::new();
    for (args, stdin) in sessions {
        let quiet = run(&env, args, None, stdin.as_bytes());
        let loud = run(&env, args, Some("trace"), stdin.as_bytes());
        assert_eq!(quiet.code, loud.code, "{args:?}: exit code changed");
        assert_eq!(quiet.stdout, loud.stdout, "{args:?}: stdout changed");
        let mut verbose_args = vec!["-vvv"];
        verbose_args.extend_from_slice(args);
        let flagged = run(&env, &verbose_args, None, stdin.as_bytes());
        assert_eq!(
            quiet.code, flagged.code,
            "{args:?}: exit code changed by -vvv"
        );
        assert_eq!(
            quiet.stdout, flagged.stdout,
            "{args:?}: stdout changed by -vvv"
        );
        logged.push_str(&loud.stderr);
        logged.push_str(&flagged.stderr);
    }
    assert!(logged.contains("botmaker_secrets"), "{logged}");
    assert!(logged.contains("op=\"write\""), "{logged}");
    assert!(logged.contains("botmaker_sqlite"), "{logged}");
    for value in [VALUE, ROTATED, "LoGgEd"] {
        assert!(!logged.contains(value), "a value was logged: {logged}");
    }
}

#[test]
fn verbose_prints_the_doctors_findings_and_keeps_the_exit_code() {
    let env = Env::new();
    env.with_bot("alpha");
    // The bot lacks its required secrets: a finding, exit 1.
    let quiet = env.run(&["doctor"]);
    let loud = env.run(&["doctor", "--verbose"]);
    assert_eq!(quiet.code, 1);
    assert_eq!(loud.code, 1);
    assert_eq!(quiet.stdout, loud.stdout);
    assert_eq!(quiet.stderr, "");
    assert!(loud.stderr.contains("WARN"), "{}", loud.stderr);
    assert!(loud.stderr.contains("doctor finding"), "{}", loud.stderr);
    // -v is info: no per-operation debug spans or events.
    assert!(!loud.stderr.contains("DEBUG"), "{}", loud.stderr);
}
