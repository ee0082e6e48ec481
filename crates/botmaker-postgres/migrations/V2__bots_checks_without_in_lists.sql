-- SQLite's V2 rebuilt the table to write its enumeration CHECKs as OR chains of
-- equalities instead of IN lists (a speed fix for SQLite). The meaning is the same
-- here: the same columns, values, constraints and indexes as V1, with the three
-- enumeration CHECKs spelled as OR chains of exactly V1's values, in the domain's
-- order (`AiProvider::ALL`, `ChannelType::ALL`, `BotStatus::ALL`; a test compares
-- them, and another compares what the server stored). PostgreSQL alters the
-- constraints in place: the rows stay where they are, and are checked again.
ALTER TABLE bots
    DROP CONSTRAINT bots_ai_provider_check,
    ADD CONSTRAINT bots_ai_provider_check
        CHECK (ai_provider = 'openai' OR ai_provider = 'anthropic' OR ai_provider = 'google' OR ai_provider = 'ollama' OR ai_provider = 'mistral' OR ai_provider = 'azure-openai'),
    DROP CONSTRAINT bots_channel_type_check,
    ADD CONSTRAINT bots_channel_type_check
        CHECK (channel_type = 'slack' OR channel_type = 'discord' OR channel_type = 'telegram' OR channel_type = 'whatsapp' OR channel_type = 'matrix' OR channel_type = 'teams'),
    DROP CONSTRAINT bots_status_check,
    ADD CONSTRAINT bots_status_check
        CHECK (status = 'created' OR status = 'starting' OR status = 'running' OR status = 'stopping' OR status = 'stopped' OR status = 'failed');
