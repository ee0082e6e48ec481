//! What each command does: parse the user's strings into domain types, call the
//! facade, print.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use botmaker::domain::{
    AiProvider, Bot, BotName, BotStatus, ChannelType, ModelName, NewBot, SecretName, Timestamp,
};
use botmaker::secrets::{SecretsOptions, trim_trailing_newline};
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
                let doc = json!({"healthy": report.is_healthy(), "bots_checked": report.bots_checked, "findings": findings});
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
            let value = read_secret_from_stdin(SecretsOptions::default().max_secret_size)?;
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

/// Reads standard input up to `max + 2` bytes (room for a trailing line ending) into a
/// zeroizing buffer; more than that is refused without storing anything.
fn read_secret_from_stdin(max: usize) -> Result<botmaker::secrets::SecretValue> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint_hint("reading the secret from standard input; end with Ctrl-D");
    }
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(3);
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    stdin
        .lock()
        .take(limit)
        .read_to_end(&mut buf)
        .context("cannot read the secret from standard input")?;
    if trim_trailing_newline(&buf).len() > max {
        bail!("the value on standard input is over the limit of {max} bytes; nothing was stored");
    }
    Ok(botmaker::secrets::SecretValue::from_bytes(&buf))
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
    let missing = bm.missing_secrets(b)?;
    let missing = if missing.is_empty() {
        "none".to_owned()
    } else {
        missing
            .iter()
            .map(SecretName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
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
    writeln!(out, "missing secrets: {missing}")?;
    Ok(())
}
