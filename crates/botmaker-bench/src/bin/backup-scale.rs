//! `backup-scale populate DATA SECRETS [--bots N] [--threads T]`: builds an
//! installation of N bots (default 10 000) with their three required secrets each
//! (30 000 files), through the facade, for the backup and restore figures of
//! BENCHMARKS.md (issue 13). The backup and restore themselves are timed with the
//! release `botmaker` binary under `/usr/bin/time -v`; the command lines are in
//! BENCHMARKS.md.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use botmaker::domain::{NewBot, SecretName};
use botmaker::{Botmaker, Config};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (data, secrets, rest) = match args.as_slice() {
        [cmd, data, secrets, rest @ ..] if cmd == "populate" => {
            (PathBuf::from(data), PathBuf::from(secrets), rest)
        }
        _ => bail!("usage: backup-scale populate DATA SECRETS [--bots N] [--threads T]"),
    };
    let mut bots = 10_000usize;
    let mut threads = 4usize;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().context("a flag without its value")?;
        match flag.as_str() {
            "--bots" => bots = value.parse()?,
            "--threads" => threads = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let config = Config::new(data, secrets);
    botmaker::migrate(&config)?;
    let bm = Botmaker::open(&config)?;
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let bm = &bm;
                s.spawn(move || -> Result<()> {
                    for i in (t..bots).step_by(threads) {
                        // Sizes of real credentials: an API key, a token, a small JSON.
                        let key = format!("sk-{i:08}-").repeat(6);
                        let token = format!("xoxb-{i:010}-").repeat(4);
                        let conf = format!("{{\"channel\":\"c{i}\",\"mode\":\"reply\"}}");
                        let values = [key.as_bytes(), token.as_bytes(), conf.as_bytes()];
                        let secrets: Vec<(SecretName, &[u8])> =
                            SecretName::required().into_iter().zip(values).collect();
                        let new = NewBot::new(
                            format!("bot-{i}").parse()?,
                            "openai".parse()?,
                            "gpt-4o".parse()?,
                            "slack".parse()?,
                        );
                        bm.create_bot(&new, &secrets)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    println!(
        "populated {bots} bots ({} secrets) in {:.1} s",
        bots * 3,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
