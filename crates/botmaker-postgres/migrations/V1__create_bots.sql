-- The bot registry, as SQLite's V1__create_bots.sql: the same columns, values and
-- constraints. Shipped migrations never change: fix forward with a new V{n} file, on
-- both backends, with the same version number and meaning.
--
-- Ids and timestamps are made in Rust: `id` is the canonical lowercase hyphenated
-- UUID, `created_at`/`updated_at` are microseconds since the Unix epoch, UTC (BIGINT,
-- as SQLite's INTEGER). `id` and `name` compare bytewise (COLLATE "C"), as in SQLite,
-- whatever the database's locale: listings order ties by id exactly as SQLite does.
-- The constraints are named: the store maps a unique violation (SQLSTATE 23505) to
-- `IdTaken` or `NameTaken` by constraint name, and V2 replaces the CHECKs by name.
-- The CHECK lists spell the enumerations exactly as the domain crate's
-- `AiProvider::ALL`, `ChannelType::ALL` and `BotStatus::ALL` (a test compares them).
CREATE TABLE bots (
    id           TEXT COLLATE "C" NOT NULL
                 CONSTRAINT bots_pkey PRIMARY KEY
                 CONSTRAINT bots_id_check CHECK (length(id) = 36 AND id = lower(id)),
    name         TEXT COLLATE "C" NOT NULL
                 CONSTRAINT bots_name_key UNIQUE
                 CONSTRAINT bots_name_check CHECK (length(name) BETWEEN 1 AND 63),
    ai_provider  TEXT NOT NULL
                 CONSTRAINT bots_ai_provider_check CHECK (ai_provider IN ('openai', 'anthropic', 'google', 'ollama', 'mistral', 'azure-openai')),
    model        TEXT NOT NULL
                 CONSTRAINT bots_model_check CHECK (length(model) BETWEEN 1 AND 128),
    channel_type TEXT NOT NULL
                 CONSTRAINT bots_channel_type_check CHECK (channel_type IN ('slack', 'discord', 'telegram', 'whatsapp', 'matrix', 'teams')),
    container_id TEXT NULL
                 CONSTRAINT bots_container_id_check CHECK (container_id IS NULL OR length(container_id) BETWEEN 1 AND 128),
    status       TEXT NOT NULL DEFAULT 'created'
                 CONSTRAINT bots_status_check CHECK (status IN ('created', 'starting', 'running', 'stopping', 'stopped', 'failed')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Listings: ORDER BY created_at DESC, id DESC, and keyset pages on (created_at, id).
CREATE INDEX bots_by_created ON bots (created_at, id);

-- Listings by status, in the same order.
CREATE INDEX bots_by_status ON bots (status, created_at, id);
