//! A tokio service on botmaker's async adapter (`botmaker::aio`, feature `tokio`):
//! it opens the installation, creates a bot with its secrets, and loads them back
//! from concurrent tasks, none of which blocks a runtime worker.
//!
//! ```text
//! cargo run -p botmaker --features tokio --example tokio_service
//! ```
//!
//! It works in a fresh temporary installation unless `BOTMAKER_DATA_DIR` is set, in
//! which case it uses the installation the environment describes (`Config::from_env`).
//! The facade's tests compile it in and run it (`the_tokio_service_example_runs`).

#![allow(clippy::print_stdout)] // an example's output is its point

use botmaker::aio::AsyncBotmaker;
use botmaker::domain::{NewBot, SecretName};
use botmaker::secrets::SecretValue;
use botmaker::{BotRef, Config};

/// The service: see the file's docs.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let config = if std::env::var_os("BOTMAKER_DATA_DIR").is_some() {
        Config::from_env()
    } else {
        Config::new(scratch.path().join("data"), scratch.path().join("secrets"))
    };
    // Migrating is an operator's step (`botmaker migrate`); the example does it once
    // for its own fresh installation, off the workers like every other blocking call.
    let for_migrate = config.clone();
    tokio::task::spawn_blocking(move || botmaker::migrate(&for_migrate)).await??;

    let bm = AsyncBotmaker::open(&config).await?;
    let name = format!("svc-{}", std::process::id());
    let new = NewBot::new(
        name.parse()?,
        "anthropic".parse()?,
        "claude-sonnet-4".parse()?,
        "slack".parse()?,
    );
    // Values are owned and zeroed when dropped: never a plain Vec that lingers.
    let secrets = vec![
        (
            "ai_api_key".parse::<SecretName>()?,
            SecretValue::from_bytes(b"sk-example"),
        ),
        (
            "channel_token".parse()?,
            SecretValue::from_bytes(b"xoxb-example"),
        ),
        (
            "channel_config".parse()?,
            SecretValue::from_bytes(br#"{"channel":"C0123"}"#),
        ),
    ];
    let created = bm.create_bot(&new, secrets).await?;
    println!("created {} ({})", created.name, created.id);

    // Request handlers: each task resolves the bot by name (one lookup) and loads one
    // secret. The handle is cheap to clone: an Arc.
    let mut tasks = tokio::task::JoinSet::new();
    for secret in ["ai_api_key", "channel_token", "channel_config"] {
        let bm = bm.clone();
        let by_name: BotRef = name.parse()?;
        let secret: SecretName = secret.parse()?;
        tasks.spawn(async move {
            let bot = bm.resolve(&by_name).await?;
            let value = bm.get_secret(&bot, &secret).await?;
            Ok::<_, botmaker::Error>((secret, value.len()))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (secret, len) = done??;
        // Lengths only: a service never prints a secret's value.
        println!("loaded {secret}: {len} bytes");
    }
    // The bot's runtime at start: all its credentials in one call (one directory
    // descriptor, every file checked).
    let loaded = bm
        .get_secrets(&created, &created.required_secrets())
        .await?;
    println!("loaded {} credentials in one call", loaded.len());
    let missing = bm.missing_secrets(&created).await?;
    println!("missing secrets: {}", missing.len());
    bm.delete_bot(&created).await?;
    Ok(())
}
