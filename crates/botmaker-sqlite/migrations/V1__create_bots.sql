-- The bot registry. Shipped migrations never change: fix forward with a new V{n} file.
--
-- Ids and timestamps are made in Rust: `id` is the canonical lowercase hyphenated
-- UUID, `created_at`/`updated_at` are microseconds since the Unix epoch, UTC.
-- The CHECK lists spell the enumerations exactly as the domain crate's
-- `AiProvider::ALL`, `ChannelType::ALL` and `BotStatus::ALL` (a test compares them).
CREATE TABLE bots (
    id           TEXT    NOT NULL PRIMARY KEY
                         CHECK (length(id) = 36 AND id = lower(id)),
    name         TEXT    NOT NULL UNIQUE
                         CHECK (length(name) BETWEEN 1 AND 63),
    ai_provider  TEXT    NOT NULL
                         CHECK (ai_provider IN ('openai', 'anthropic', 'google', 'ollama', 'mistral', 'azure-openai')),
    model        TEXT    NOT NULL
                         CHECK (length(model) BETWEEN 1 AND 128),
    channel_type TEXT    NOT NULL
                         CHECK (channel_type IN ('slack', 'discord', 'telegram', 'whatsapp', 'matrix', 'teams')),
    container_id TEXT    NULL
                         CHECK (container_id IS NULL OR length(container_id) BETWEEN 1 AND 128),
    status       TEXT    NOT NULL DEFAULT 'created'
                         CHECK (status IN ('created', 'starting', 'running', 'stopping', 'stopped', 'failed')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- Listings: ORDER BY created_at DESC, id DESC, and keyset pages on (created_at, id).
CREATE INDEX bots_by_created ON bots (created_at, id);

-- Listings by status, in the same order.
CREATE INDEX bots_by_status ON bots (status, created_at, id);
