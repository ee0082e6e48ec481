//! Decoding rows of the `bots` table into [`Bot`]s.

use botmaker_domain::{
    AiProvider, Bot, BotId, BotName, BotStatus, ChannelType, ContainerId, DomainError, ModelName,
    RepoError, SecretsRootId, Timestamp,
};
use rusqlite::Row;

/// Stored data this code cannot read.
pub(crate) fn corrupt(detail: String) -> RepoError {
    RepoError::Corrupt { detail }
}

/// The text in column `i`, borrowed from SQLite's row buffer (no allocation).
/// `None` when it is not valid text: the caller then reads it with `Row::get`,
/// which refuses the same values with SQLite's own conversion error.
#[inline]
pub(crate) fn text_ref<'r>(row: &'r Row<'_>, i: usize) -> Option<&'r str> {
    row.get_ref(i).ok()?.as_str().ok()
}

/// A row of the `bots` table as a [`Bot`]; anything undecodable is corruption.
///
/// Text columns are parsed straight from SQLite's buffer, so a row costs one
/// allocation per string field of [`Bot`] and none for the id or the enumerations.
#[inline]
fn decode(row: &Row<'_>) -> Result<Bot, RepoError> {
    decode_with(row, None)
}

/// [`decode`], with `updated_at` given instead of read when it is `Some` (the row is
/// about to be updated with it).
///
/// `inline`: it runs for every row read, called from the store's statements in
/// another module; this lets it inline across codegen units.
#[inline]
pub(crate) fn decode_with(row: &Row<'_>, updated_at: Option<Timestamp>) -> Result<Bot, RepoError> {
    fn owned(row: &Row<'_>, i: usize) -> Result<String, RepoError> {
        row.get::<_, String>(i)
            .map_err(|e| corrupt(format!("bots row, column {i}: {e}")))
    }
    /// Parses column `i` with `parse`, from the borrowed text when there is some.
    fn parse<T, E>(
        row: &Row<'_>,
        i: usize,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Result<T, E>, RepoError> {
        match text_ref(row, i) {
            Some(text) => Ok(parse(text)),
            None => owned(row, i).map(|text| parse(&text)),
        }
    }
    let id = parse(row, 0, BotId::parse)?.map_err(|e| corrupt(format!("bots row: {e}")))?;
    let bad = |e: DomainError| corrupt(format!("bot {id}: {e}"));
    let micros = |i: usize| {
        row.get::<_, i64>(i)
            .map_err(|e| corrupt(format!("bot {id}, column {i}: {e}")))
            .and_then(|m| Timestamp::from_unix_micros(m).map_err(bad))
    };
    let container = match row.get_ref(5).ok().and_then(|v| v.as_str_or_null().ok()) {
        Some(c) => c.map(ContainerId::parse),
        None => row
            .get::<_, Option<String>>(5)
            .map_err(|e| corrupt(format!("bot {id}, container_id: {e}")))?
            .as_deref()
            .map(ContainerId::parse),
    };
    let secrets_root = match row.get_ref(9).ok().and_then(|v| v.as_str_or_null().ok()) {
        Some(r) => r.map(SecretsRootId::parse),
        None => row
            .get::<_, Option<String>>(9)
            .map_err(|e| corrupt(format!("bot {id}, secrets_root: {e}")))?
            .as_deref()
            .map(SecretsRootId::parse),
    };
    Ok(Bot {
        id,
        name: parse(row, 1, BotName::parse)?.map_err(bad)?,
        ai_provider: parse(row, 2, AiProvider::parse)?.map_err(bad)?,
        model: parse(row, 3, ModelName::parse)?.map_err(bad)?,
        channel_type: parse(row, 4, ChannelType::parse)?.map_err(bad)?,
        container_id: container.transpose().map_err(bad)?,
        status: parse(row, 6, BotStatus::parse)?.map_err(bad)?,
        created_at: micros(7)?,
        updated_at: match updated_at {
            Some(t) => t,
            None => micros(8)?,
        },
        secrets_root: secrets_root.transpose().map_err(bad)?,
    })
}

/// Runs a prepared query and decodes every row. The outer error is SQLite's, the inner
/// one a row that does not decode.
pub(crate) fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Result<Vec<Bot>, RepoError>, rusqlite::Error> {
    let mut rows = stmt.query(params)?;
    let mut bots = Vec::new();
    while let Some(row) = rows.next()? {
        match decode(row) {
            Ok(bot) => bots.push(bot),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(bots))
}

/// The first row of a query, decoded; `None` when there is none.
pub(crate) fn first(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Option<Result<Bot, RepoError>>, rusqlite::Error> {
    let mut rows = stmt.query(params)?;
    Ok(rows.next()?.map(decode))
}
