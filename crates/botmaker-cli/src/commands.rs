//! What each command does: parse the user's strings into domain types, call the
//! facade, print.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};
use botmaker::domain::{
    AiProvider, Bot, BotName, BotStatus, ChannelType, ModelName, NewBot, SecretName, Timestamp,
};
use botmaker::secrets::trim_trailing_newline;
use botmaker::{BotRef, Botmaker, Config};
use serde_json::json;

use crate::{BotCommand, Command, Outcome, SecretCommand};

pub(crate) fn run(config: &Config, command: Command, out: &mut impl Write) -> Result<Outcome> {
    match command {
        Command::Migrate { status } => {
            if status {
                write!(out, "{}", botmaker::migration_status(config)?)?;
            } else {
                write!(out, "{}", botmaker::migrate(config)?)?;
            }
            Ok(Outcome::Success)
        }
        Command::Backup {
            verify,
            progress,
            dir,
        } => crate::backup::backup(config, &dir, verify, progress, out),
        Command::Restore { progress, dir } => crate::backup::restore(config, &dir, progress, out),
        Command::Bot(cmd) => bot(&Botmaker::open(config)?, cmd, out),
        Command::Secret(cmd) => secret(&Botmaker::open(config)?, cmd, out),
        Command::Doctor { fix, json } => {
            let report = Botmaker::doctor(config, fix);
            if json {
                let findings: Vec<_> = report
                    .findings
                    .iter()
                    .map(|f| json!({"kind": f.kind.as_str(), "subject": f.subject, "detail": f.detail, "fixed": f.fixed}))
                    .collect();
                let doc = json!({
                    "healthy": report.is_healthy(),
                    "bots_checked": report.bots_checked,
                    "held_elsewhere": report.held_elsewhere,
                    "secrets_root": report.secrets_root.map(|r| r.to_string()),
                    "findings": findings,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                write!(out, "{report}")?;
            }
            Ok(if report.is_healthy() {
                Outcome::Success
            } else {
                Outcome::Problems
            })
        }
    }
}

fn bot(bm: &Botmaker, cmd: BotCommand, out: &mut impl Write) -> Result<Outcome> {
    match cmd {
        BotCommand::Create {
            name,
            provider,
            model,
            channel,
            json,
        } => {
            let new = NewBot::new(
                BotName::parse(&name)?,
                AiProvider::parse(&provider)?,
                ModelName::parse(&model)?,
                ChannelType::parse(&channel)?,
            );
            let bot = bm.create_bot(&new, &[])?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&bot)?)?;
            } else {
                writeln!(out, "{}", bot.id)?;
            }
        }
        BotCommand::List { status, json } => {
            let status = status.as_deref().map(BotStatus::parse).transpose()?;
            let bots = bm.list_bots(status)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&bots)?)?;
            } else {
                print_table(&bots, out)?;
            }
        }
        BotCommand::Show { bot, json } => {
            let bot = resolve(bm, &bot)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&bot)?)?;
            } else {
                print_bot(bm, &bot, out)?;
            }
        }
        BotCommand::SetStatus { bot, status } => {
            let to = BotStatus::parse(&status)?;
            let before = resolve(bm, &bot)?;
            let after = bm.set_status(&before, to)?;
            writeln!(out, "{}: {} -> {}", after.name, before.status, after.status)?;
        }
        BotCommand::Delete { bot } => {
            let deleted = bm.delete_bot(&resolve(bm, &bot)?)?;
            writeln!(out, "deleted bot {} ({})", deleted.name, deleted.id)?;
        }
    }
    Ok(Outcome::Success)
}

fn secret(bm: &Botmaker, cmd: SecretCommand, out: &mut impl Write) -> Result<Outcome> {
    match cmd {
        SecretCommand::Set { bot, name } => {
            // Parse both arguments before the lookup, so a bad secret name is
            // reported even for a bot that does not exist.
            let reference: BotRef = bot.parse()?;
            let name = SecretName::parse(&name)?;
            let bot = bm.resolve(&reference)?;
            // Another host's bot: refused before a value is read.
            bm.held_here(&bot)?;
            let value = read_secret_from_stdin(bm.secrets().max_secret_size())?;
            let trimmed = trim_trailing_newline(value.expose());
            if trimmed.is_empty() {
                bail!(
                    "refusing an empty value for secret {name} of bot {}: pipe the value on standard input",
                    bot.name
                );
            }
            bm.set_secret(&bot, &name, trimmed)?;
            writeln!(
                out,
                "set {name} for bot {} ({} bytes)",
                bot.name,
                trimmed.len()
            )?;
        }
        SecretCommand::Get { bot, name } => {
            let reference: BotRef = bot.parse()?;
            let name = SecretName::parse(&name)?;
            let value = bm.get_secret(&bm.resolve(&reference)?, &name)?;
            out.write_all(value.expose())?;
            if std::io::stdout().is_terminal() {
                writeln!(out)?;
            }
        }
        SecretCommand::List { bot, json } => {
            let metas = bm.list_secrets(&resolve(bm, &bot)?)?;
            if json {
                let rows: Vec<_> = metas
                    .iter()
                    .map(|m| {
                        json!({
                            "name": m.name.as_str(),
                            "size": m.size,
                            "mode": format!("{:04o}", m.mode),
                            "modified": Timestamp::from_system_time(m.modified).to_string(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string(&rows)?)?;
            } else {
                writeln!(out, "{:<24} {:>8} {:<5} MODIFIED", "NAME", "SIZE", "MODE")?;
                for m in &metas {
                    let modified = Timestamp::from_system_time(m.modified);
                    writeln!(
                        out,
                        "{:<24} {:>8} {:04o}  {modified}",
                        m.name.as_str(),
                        m.size,
                        m.mode
                    )?;
                }
            }
        }
        SecretCommand::Rm { bot, name } => {
            let reference: BotRef = bot.parse()?;
            let name = SecretName::parse(&name)?;
            let bot = bm.resolve(&reference)?;
            bm.remove_secret(&bot, &name)?;
            writeln!(out, "removed {name} from bot {}", bot.name)?;
        }
    }
    Ok(Outcome::Success)
}

/// The one lookup of a command's BOT argument (an id or a name); the facade's
/// operations take the `Bot` it returns.
fn resolve(bm: &Botmaker, bot: &str) -> Result<Bot> {
    Ok(bm.resolve(&BotRef::parse(bot)?)?)
}

/// Reads the secret from standard input (see [`read_capped`]), with a hint when a
/// person is typing it.
fn read_secret_from_stdin(max: usize) -> Result<botmaker::secrets::SecretValue> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint_hint("reading the secret from standard input; end with Ctrl-D");
    }
    // Not through `stdin.lock()`: std's standard input is buffered, and its buffer
    // (never zeroed, alive until exit) would keep a copy of whatever part of the value
    // went through it. A duplicate of descriptor 0 reads straight into our buffer.
    match stdin.as_fd().try_clone_to_owned() {
        Ok(raw) => read_capped(std::fs::File::from(raw), max),
        // A closed descriptor 0 (EBADF, 9 on Linux) reads as empty, as std's own stdin
        // treats it: the empty value is then refused with the usual message.
        Err(e) if e.raw_os_error() == Some(9) => read_capped(std::io::empty(), max),
        Err(e) => Err(e).context("cannot read the secret from standard input"),
    }
}

/// Reads `reader` up to `max + 2` bytes (room for a trailing line ending); more than
/// that is refused without storing anything.
///
/// The bytes land in one zeroizing buffer allocated once at its final size and never
/// grown: a growing `Vec` (`read_to_end`) frees an unzeroed copy of the value at every
/// reallocation, and its small-read probe copies through an unzeroed stack buffer.
/// One byte past `max + 2` is enough to tell an over-limit value, so the rest of the
/// input is not read.
fn read_capped(mut reader: impl Read, max: usize) -> Result<botmaker::secrets::SecretValue> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; max.saturating_add(3)]);
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read the secret from standard input"),
        }
    }
    let value = &buf[..filled];
    if trim_trailing_newline(value).len() > max {
        bail!("the value on standard input is over the limit of {max} bytes; nothing was stored");
    }
    Ok(botmaker::secrets::SecretValue::from_bytes(value))
}

#[allow(clippy::print_stderr)]
fn eprint_hint(hint: &str) {
    eprintln!("{hint}");
}

fn print_table(bots: &[Bot], out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<36}  {:<24} {:<12} {:<24} {:<9} {:<8} CREATED",
        "ID", "NAME", "PROVIDER", "MODEL", "CHANNEL", "STATUS"
    )?;
    for b in bots {
        writeln!(
            out,
            "{:<36}  {:<24} {:<12} {:<24} {:<9} {:<8} {}",
            b.id.to_string(),
            b.name.as_str(),
            b.ai_provider.as_str(),
            b.model.as_str(),
            b.channel_type.as_str(),
            b.status.as_str(),
            b.created_at
        )?;
    }
    Ok(())
}

fn print_bot(bm: &Botmaker, b: &Bot, out: &mut impl Write) -> Result<()> {
    let container = b.container_id.as_ref().map_or("-", |c| c.as_str());
    let here = bm.secrets_root();
    let root = match b.secrets_root {
        Some(r) if r == here => format!("{r} (this host's)"),
        Some(r) => format!("{r} (another host's; this host's is {here})"),
        None => format!("- (not recorded yet; treated as this host's, {here})"),
    };
    let missing = match bm.missing_secrets(b) {
        Ok(missing) if missing.is_empty() => "none".to_owned(),
        Ok(missing) => missing
            .iter()
            .map(SecretName::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        // Not knowable here: they are on the host whose secrets root holds them.
        Err(botmaker::Error::SecretsElsewhere { held_by, .. }) => {
            format!("unknown here (held by secrets root {held_by})")
        }
        Err(e) => return Err(e.into()),
    };
    writeln!(out, "id:           {}", b.id)?;
    writeln!(out, "name:         {}", b.name)?;
    writeln!(out, "ai_provider:  {}", b.ai_provider)?;
    writeln!(out, "model:        {}", b.model)?;
    writeln!(out, "channel_type: {}", b.channel_type)?;
    writeln!(out, "container_id: {container}")?;
    writeln!(out, "status:       {}", b.status)?;
    writeln!(out, "created_at:   {}", b.created_at)?;
    writeln!(out, "updated_at:   {}", b.updated_at)?;
    writeln!(out, "secrets_root: {root}")?;
    writeln!(out, "missing secrets: {missing}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::read_capped;

    /// Hands out `data` one byte per call and records where each call's buffer lies:
    /// the address its slice would start at for byte 0 (`ptr - given`) and where it
    /// ends. A buffer that is never moved or regrown keeps both the same on every call.
    struct Trickle<'a> {
        data: &'a [u8],
        given: usize,
        starts: Vec<usize>,
        ends: Vec<usize>,
    }

    impl<'a> Trickle<'a> {
        fn new(data: &'a [u8]) -> Self {
            Self {
                data,
                given: 0,
                starts: Vec::new(),
                ends: Vec::new(),
            }
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let at = buf.as_ptr().addr();
            self.starts.push(at - self.given);
            self.ends.push(at + buf.len());
            let Some((&first, rest)) = self.data.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = first;
            self.data = rest;
            self.given += 1;
            Ok(1)
        }
    }

    fn read(data: &[u8], max: usize) -> (anyhow::Result<Vec<u8>>, Trickle<'_>) {
        let mut reader = Trickle::new(data);
        let value = read_capped(&mut reader, max).map(|v| v.expose().to_vec());
        (value, reader)
    }

    /// Finding 6 of issue 11: every regrowth of the buffer frees (or leaves on the
    /// stack) an unzeroed copy of the bytes read so far. The value must be read into
    /// one buffer, allocated once at the cap: every read lands in the same buffer.
    #[test]
    fn the_value_is_read_into_one_buffer_that_never_moves_or_grows() {
        let max = 4096;
        let data = vec![b'k'; max];
        let (value, reader) = read(&data, max);
        assert_eq!(value.unwrap(), data);
        let first = reader.starts[0];
        assert!(
            reader.starts.iter().all(|&s| s == first),
            "the secret moved between buffers during the read: {} distinct buffers",
            {
                let mut s = reader.starts.clone();
                s.sort_unstable();
                s.dedup();
                s.len()
            }
        );
        assert!(
            reader.ends.iter().all(|&e| e == reader.ends[0]),
            "the buffer was regrown during the read"
        );
    }

    #[test]
    fn exactly_the_cap_is_enforced() {
        let max = 100;
        let value = vec![b'v'; max];
        for ending in [&b""[..], b"\n", b"\r\n"] {
            let input = [&value[..], ending].concat();
            let (read_value, _) = read(&input, max);
            assert_eq!(read_value.unwrap(), input, "{max} bytes and {ending:?} fit");
        }
        for over in [
            vec![b'v'; max + 1],
            [&vec![b'v'; max + 1][..], b"\n"].concat(),
            [&value[..], b"\n\n"].concat(),
            vec![b'v'; 10 * max],
        ] {
            let err = read(&over, max).0.unwrap_err();
            assert_eq!(
                err.to_string(),
                "the value on standard input is over the limit of 100 bytes; nothing was stored"
            );
        }
        // Empty input reads as an empty value; the caller refuses it.
        assert_eq!(read(b"", max).0.unwrap(), b"");
    }
}
