//! Hostile input: a seeded corpus of bot ids, names, secret names and values through
//! every entry point of the library (and of the `botmaker` binary when it is built).
//! Nothing escapes the secrets root, nothing panics, every refusal is a typed error
//! with a one-line message, and nothing already stored changes.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use botmaker::domain::{
    AiProvider, BotId, BotName, BotStatus, ChannelType, ContainerId, ModelName, NewBot, SecretName,
};
use botmaker::secrets::{SecretsError, SecretsOptions};
use botmaker::{BotRef, Botmaker, Config};

use super::common::{Deadline, Tally, keep_if_failed};
use botmaker_testkit::hostile as corpus;
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;

/// Victims: stored before the corpus runs; nothing in the corpus may change them.
const VICTIMS: [&str; 2] = ["victim-alpha", "victim-beta"];
const CANARY: &[u8] = b"CANARY-OUTSIDE-THE-STORE";

/// A secret value around the store's default size cap.
fn value(rng: &mut Rng) -> Vec<u8> {
    corpus::value(rng, SecretsOptions::DEFAULT_MAX_SECRET_SIZE)
}

/// A refusal's message: present, one line, no control characters.
fn clear(message: &str, what: &str) -> Result<(), String> {
    if message.is_empty() {
        return Err(format!("{what}: empty error message"));
    }
    if let Some(c) = message.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what}: control character {c:?} in the error message {message:?}"
        ));
    }
    Ok(())
}

/// An accepted name or id is one plain path component that is not ours.
fn one_component(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 || s.contains('/') || s.contains('\0') || s.starts_with('.') {
        Err(format!(
            "{what} accepted {s:?}, which is not one plain path component"
        ))
    } else {
        Ok(())
    }
}

/// A bot's secrets as stored.
type Stored = Vec<(SecretName, Vec<u8>)>;

/// The installation the corpus runs against.
pub struct Target {
    scratch: Scratch,
    config: Config,
    bm: Botmaker,
    victims: Vec<(BotId, Stored)>,
    scratch_bot: BotRef,
    outside: PathBuf,
}

impl Target {
    /// A fresh installation in a scratch directory, holding the victims (bots with
    /// every required secret), a scratch bot the corpus may write to, and canary files
    /// outside the store.
    pub fn new() -> Result<Self> {
        let scratch = Scratch::new("stress-hostile")?;
        let config = Config::new(scratch.path().join("data"), scratch.path().join("secrets"));
        botmaker::migrate(&config)?;
        let bm = Botmaker::open(&config)?;
        let mut victims = Vec::new();
        for v in VICTIMS {
            let secrets: Vec<(SecretName, Vec<u8>)> = SecretName::REQUIRED
                .iter()
                .map(|n| Ok((n.parse()?, format!("{v}:{n}:stored-before").into_bytes())))
                .collect::<Result<_, botmaker::domain::DomainError>>()?;
            let refs: Vec<(SecretName, &[u8])> = secrets
                .iter()
                .map(|(n, b)| (n.clone(), b.as_slice()))
                .collect();
            let bot = bm.create_bot(&new_bot(v.parse()?)?, &refs)?;
            victims.push((bot.id, secrets));
        }
        let scratch_name: BotName = "scratch-bot".parse()?;
        bm.create_bot(&new_bot(scratch_name.clone())?, &[])?;
        let outside = scratch.path().join("outside");
        std::fs::create_dir(&outside)?;
        for n in SecretName::REQUIRED {
            std::fs::write(outside.join(n), CANARY)?;
        }
        Ok(Self {
            scratch,
            config,
            bm,
            victims,
            scratch_bot: BotRef::Name(scratch_name),
            outside,
        })
    }

    /// Runs one input through every library entry point. `Err` is a failed check.
    #[allow(clippy::too_many_lines)] // every entry point, in one place
    pub fn feed(&self, s: &str, s2: &str, v: &[u8]) -> Result<u64, String> {
        let mut checks = 0u64;
        let mut check = |r: Result<(), String>| -> Result<(), String> {
            checks += 1;
            r
        };
        // Validators: accepted values are one component; refusals are clear.
        macro_rules! validate {
            ($ty:ty, $what:expr, $component:expr) => {
                match <$ty>::parse(s) {
                    Ok(x) => {
                        let shown = x.to_string();
                        if $component {
                            check(one_component(&shown, $what))?;
                        }
                    }
                    Err(e) => check(clear(&e.to_string(), $what))?,
                }
            };
        }
        validate!(BotId, "BotId", true);
        validate!(BotName, "BotName", true);
        validate!(SecretName, "SecretName", true);
        validate!(ModelName, "ModelName", false);
        validate!(ContainerId, "ContainerId", false);
        validate!(AiProvider, "AiProvider", false);
        validate!(ChannelType, "ChannelType", false);
        validate!(BotStatus, "BotStatus", false);
        let touches_victim = VICTIMS.iter().any(|v| s.contains(v))
            || self
                .victims
                .iter()
                .any(|(id, _)| s.eq_ignore_ascii_case(&id.to_string()));
        if touches_victim {
            return Ok(checks);
        }

        // A reference: resolving an unknown bot is NotFound; every op refuses clearly.
        match s.parse::<BotRef>() {
            Ok(r) => {
                match self.bm.resolve(&r) {
                    Ok(bot) if bot.name.as_str() == "scratch-bot" => {}
                    Ok(bot) => {
                        return Err(format!(
                            "{s:?} resolved to a bot nobody created: {}",
                            bot.name
                        ));
                    }
                    Err(e) => check(clear(&e.to_string(), "resolve"))?,
                }
                if let Ok(status) = BotStatus::parse(s2)
                    && let Err(e) = self
                        .bm
                        .resolve(&r)
                        .and_then(|bot| self.bm.set_status(&bot, status))
                {
                    check(clear(&e.to_string(), "set_status"))?;
                }
                if let Err(e) = self
                    .bm
                    .resolve(&r)
                    .and_then(|bot| self.bm.list_secrets(&bot))
                {
                    check(clear(&e.to_string(), "list_secrets"))?;
                }
            }
            Err(e) => check(clear(&e.to_string(), "BotRef"))?,
        }

        // A secret name and value on the scratch bot: stored exactly, or refused with
        // the previous value intact.
        if let Ok(name) = SecretName::parse(s) {
            let before = self
                .bm
                .resolve(&self.scratch_bot)
                .and_then(|bot| self.bm.get_secret(&bot, &name))
                .ok()
                .map(|v| v.expose().to_vec());
            match self
                .bm
                .resolve(&self.scratch_bot)
                .and_then(|bot| self.bm.set_secret(&bot, &name, v))
            {
                Ok(()) => {
                    let got = self
                        .bm
                        .resolve(&self.scratch_bot)
                        .and_then(|bot| self.bm.get_secret(&bot, &name))
                        .map_err(|e| format!("read back {s:?}: {e}"))?;
                    check(if got.expose() == v {
                        Ok(())
                    } else {
                        Err(format!("secret {s:?} read back differently"))
                    })?;
                    self.bm
                        .resolve(&self.scratch_bot)
                        .and_then(|bot| self.bm.remove_secret(&bot, &name))
                        .map_err(|e| format!("remove {s:?}: {e}"))?;
                }
                Err(e) => {
                    check(clear(&e.to_string(), "set_secret"))?;
                    let after = self
                        .bm
                        .resolve(&self.scratch_bot)
                        .and_then(|bot| self.bm.get_secret(&bot, &name))
                        .ok()
                        .map(|v| v.expose().to_vec());
                    check(if before == after {
                        Ok(())
                    } else {
                        Err(format!("refused write of {s:?} changed the value"))
                    })?;
                }
            }
        }

        // A new bot named by the input, with the value as its first secret: created
        // whole (then deleted again) or not at all.
        if let Ok(name) = BotName::parse(s) {
            let new = new_bot(name.clone()).map_err(|e| e.to_string())?;
            let key: SecretName = SecretName::AI_API_KEY
                .parse()
                .map_err(|e: botmaker::domain::DomainError| e.to_string())?;
            match self.bm.create_bot(&new, &[(key.clone(), v)]) {
                Ok(bot) => {
                    let got = self
                        .bm
                        .resolve(&BotRef::Name(name.clone()))
                        .and_then(|bot| self.bm.get_secret(&bot, &key))
                        .map_err(|e| format!("read back: {e}"))?;
                    check(if got.expose() == v {
                        Ok(())
                    } else {
                        Err(format!("bot {s:?}: secret read back differently"))
                    })?;
                    self.bm
                        .resolve(&BotRef::Id(bot.id))
                        .and_then(|bot| self.bm.delete_bot(&bot))
                        .map_err(|e| format!("delete {s:?}: {e}"))?;
                }
                Err(e) => {
                    check(clear(&e.to_string(), "create_bot"))?;
                    let row = self.bm.resolve(&BotRef::Name(name)).is_ok();
                    let dir = self
                        .bm
                        .secrets()
                        .bots()
                        .map_err(|e| e.to_string())?
                        .contains(&new.id);
                    check(if row || dir {
                        Err(format!(
                            "refused create of {s:?} left row {row}, directory {dir}"
                        ))
                    } else {
                        Ok(())
                    })?;
                }
            }
        }

        // The secrets store directly, for a victim bot: hostile names read nothing.
        if let Ok(name) = SecretName::parse(s) {
            let (id, stored) = &self.victims[0];
            match self.bm.secrets().read(id, &name) {
                Ok(got) => {
                    check(
                        if got.expose() != CANARY
                            && stored
                                .iter()
                                .any(|(n, b)| *n == name && b.as_slice() == got.expose())
                        {
                            Ok(())
                        } else {
                            Err(format!(
                                "read of {s:?} returned something that was not stored"
                            ))
                        },
                    )?;
                }
                Err(SecretsError::NotFound { .. }) => {}
                Err(e) => return Err(format!("read of {s:?}: unexpected error {e}")),
            }
        }
        Ok(checks)
    }

    /// Victims unchanged, canaries unchanged, nothing created outside the store.
    pub fn verify(&self) -> Result<(), String> {
        for (id, secrets) in &self.victims {
            let r = BotRef::Id(*id);
            let bot = self
                .bm
                .resolve(&r)
                .map_err(|e| format!("victim {id}: {e}"))?;
            if !VICTIMS.contains(&bot.name.as_str()) || bot.status != BotStatus::Created {
                return Err(format!("victim {id} changed: {} {}", bot.name, bot.status));
            }
            for (n, want) in secrets {
                let got = self
                    .bm
                    .resolve(&r)
                    .and_then(|bot| self.bm.get_secret(&bot, n))
                    .map_err(|e| format!("victim {id} secret {n}: {e}"))?;
                if got.expose() != want.as_slice() {
                    return Err(format!("victim {id} secret {n} changed"));
                }
            }
            let listed = self
                .bm
                .resolve(&r)
                .and_then(|bot| self.bm.list_secrets(&bot))
                .map_err(|e| e.to_string())?
                .len();
            if listed != secrets.len() {
                return Err(format!(
                    "victim {id} has {listed} secrets, expected {}",
                    secrets.len()
                ));
            }
        }
        for n in SecretName::REQUIRED {
            let p = self.outside.join(n);
            if std::fs::read(&p).map_err(|e| e.to_string())? != CANARY {
                return Err(format!("canary {} changed", p.display()));
            }
        }
        let top = names(self.scratch.path())?;
        let want: BTreeSet<String> = ["data", "secrets", "outside"].map(String::from).into();
        if top != want {
            return Err(format!("entries appeared next to the store: {top:?}"));
        }
        if names(&self.outside)?.len() != SecretName::REQUIRED.len() {
            return Err("entries appeared in the outside directory".to_owned());
        }
        for entry in names(self.config.secrets_dir())? {
            // The advisory lock of create, delete and the doctor's fix step, and the
            // root's id file.
            if entry == ".lock" || entry == ".root-id" {
                continue;
            }
            let ok = BotId::parse(&entry).is_ok_and(|id| id.to_string() == entry);
            if !ok {
                return Err(format!("unexpected entry in the secrets root: {entry:?}"));
            }
            for inner in names(&self.config.secrets_dir().join(&entry))? {
                if SecretName::parse(&inner).is_err() {
                    return Err(format!(
                        "unexpected entry in bot directory {entry}: {inner:?}"
                    ));
                }
            }
        }
        let data = names(self.config.data_dir())?;
        if data.iter().any(|n| !n.starts_with("botmaker.db")) {
            return Err(format!(
                "unexpected entries in the data directory: {data:?}"
            ));
        }
        Ok(())
    }

    /// The scratch directory holding the installation.
    pub fn path(&self) -> &Path {
        self.scratch.path()
    }
}

fn names(dir: &Path) -> Result<BTreeSet<String>, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| {
            e.map(|e| e.file_name().to_string_lossy().into_owned())
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn new_bot(name: BotName) -> Result<NewBot, botmaker::domain::DomainError> {
    Ok(NewBot::new(
        name,
        "openai".parse()?,
        "gpt-4o".parse()?,
        "slack".parse()?,
    ))
}

/// The library corpus until `deadline`; every `verify_every` inputs the victims,
/// canaries and directories are checked.
pub fn run_library(deadline: Deadline, rng: &mut Rng, verify_every: u64) -> Result<Tally> {
    let mut tally = Tally::new("hostile-library");
    let mut target = Target::new()?;
    // The known-bad inputs first, so every run tries them whatever its seed.
    let mut known = corpus::KNOWN_BAD.iter();
    while !deadline.over(tally.ops) {
        let s = known
            .next()
            .map_or_else(|| corpus::string(rng), |k| (*k).to_owned());
        let (s2, v) = (corpus::string(rng), value(rng));
        tally.ops += 1;
        match catch_unwind(AssertUnwindSafe(|| target.feed(&s, &s2, &v))) {
            Ok(Ok(n)) => tally.checks += n,
            Ok(Err(m)) => tally.fail(m),
            Err(_) => tally.fail(format!(
                "panic on input {s:?} / {s2:?} ({} value bytes)",
                v.len()
            )),
        }
        if tally.ops.is_multiple_of(verify_every) {
            tally.check(target.verify());
        }
    }
    tally.check(target.verify());
    tally.add("inputs", tally.ops);
    keep_if_failed(&mut target.scratch, &mut tally);
    Ok(tally)
}

/// The `botmaker` binary next to this executable, if it has been built.
pub fn cli_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    // Test binaries live in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let bin = dir.join("botmaker");
    bin.is_file().then_some(bin)
}

/// The same corpus through the binary until `deadline`: exit 0, or 1 with one
/// `error:` line, or 2 (usage); never a panic or a signal.
pub fn run_cli(bin: &Path, deadline: Deadline, rng: &mut Rng) -> Result<Tally> {
    let mut tally = Tally::new("hostile-cli");
    let mut target = Target::new()?;
    let run = |args: &[&str], stdin: &[u8]| -> Result<(Option<i32>, String), String> {
        let mut child = Command::new(bin)
            .args(args)
            .env("BOTMAKER_DATA_DIR", target.config.data_dir())
            .env("BOTMAKER_SECRETS_DIR", target.config.secrets_dir())
            .env_remove("SECRETS_DIR")
            .current_dir(target.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut i) = child.stdin.take() {
            use std::io::Write as _;
            let _ = i.write_all(stdin);
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    while !deadline.over(tally.ops) {
        let (s, s2, v) = (corpus::string(rng), corpus::string(rng), value(rng));
        if s.contains('\0') || s2.contains('\0') || VICTIMS.iter().any(|x| s.contains(x)) {
            tally.add("skipped-nul", 1);
            continue;
        }
        tally.ops += 1;
        let created = BotName::parse(&s).is_ok();
        let commands: [(Vec<&str>, &[u8]); 6] = [
            (vec!["bot", "show", &s], b""),
            (vec!["bot", "set-status", &s, &s2], b""),
            (vec!["secret", "get", "scratch-bot", &s], b""),
            (vec!["secret", "set", "scratch-bot", &s], &v),
            (
                vec![
                    "bot",
                    "create",
                    &s,
                    "--provider",
                    "openai",
                    "--model",
                    &s2,
                    "--channel",
                    "slack",
                ],
                b"",
            ),
            (vec!["secret", "list", &s], b""),
        ];
        for (args, stdin) in commands {
            let (code, stderr) = match run(&args, stdin) {
                Ok(x) => x,
                Err(e) => {
                    tally.fail(format!("running {args:?}: {e}"));
                    continue;
                }
            };
            tally.check(match code {
                _ if stderr.contains("panicked") => Err(format!("{args:?} panicked: {stderr}")),
                Some(0 | 2) => Ok(()),
                Some(1) if stderr.starts_with("error: ") && stderr.lines().count() == 1 => Ok(()),
                other => Err(format!("{args:?}: exit {other:?}, stderr {stderr:?}")),
            });
        }
        if created {
            let _ = run(&["bot", "delete", &s], b"");
        }
        let _ = run(&["secret", "rm", "scratch-bot", &s], b"");
        if tally.ops.is_multiple_of(25) {
            tally.check(target.verify());
        }
    }
    tally.check(target.verify());
    tally.add("inputs", tally.ops);
    keep_if_failed(&mut target.scratch, &mut tally);
    Ok(tally)
}
