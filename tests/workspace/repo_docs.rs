//! README.md always holds the two commands a newcomer runs, and `.ci/run` runs the
//! README's test command.

use crate::root;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The commands in README.md's "Quick start" code block.
fn quick_start_commands() -> Vec<String> {
    let readme = read("README.md");
    let start = readme
        .find("## Quick start")
        .expect("README.md has a `## Quick start` section");
    let block = readme[start..]
        .split("```")
        .nth(1)
        .expect("a code block under Quick start");
    block
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_holds_the_main_job_and_the_test_command() {
    let cmds = quick_start_commands();
    assert!(cmds.iter().any(|c| c == "cargo xtask migrate"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "cargo xtask ci"), "{cmds:?}");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = read(".ci/run");
    let last = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(
        last, "cargo xtask ci",
        ".ci/run must end by running the README's test command"
    );
}

#[test]
fn the_xtask_alias_exists() {
    let config = read(".cargo/config.toml");
    assert!(
        config.contains("xtask = \"run --quiet --package xtask --\""),
        "{config}"
    );
}

/// Every file `.cargo/mutants.toml` examines exists (a renamed module would otherwise
/// drop out of mutation testing without a word), and TESTING.md, which gives the
/// figures, is linked from README.md.
#[test]
fn the_mutation_testing_config_names_existing_files() {
    let config = read(".cargo/mutants.toml");
    let start = config
        .find("examine_globs = [")
        .expect("examine_globs in .cargo/mutants.toml");
    let end = start + config[start..].find(']').unwrap();
    let files: Vec<&str> = config[start..end]
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .map(|l| l.trim_end_matches(',').trim_matches('"'))
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    for f in files {
        assert!(
            root().join(f).is_file(),
            ".cargo/mutants.toml names {f}, which does not exist"
        );
    }
    assert!(read("README.md").contains("TESTING.md"));
}
