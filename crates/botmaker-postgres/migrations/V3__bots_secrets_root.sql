-- Which secrets root holds each bot's secrets (issue 16): the id of that root, a
-- canonical lowercase hyphenated UUID, or NULL for a bot registered before this
-- migration ("legacy"), which `migrate` then adopts into the root that holds its
-- directory. The same version and meaning as SQLite's V3__bots_secrets_root.sql;
-- the constraint is named like the others. Existing rows get NULL and keep every value.
ALTER TABLE bots
    ADD COLUMN secrets_root TEXT COLLATE "C" NULL
        CONSTRAINT bots_secrets_root_check
        CHECK (secrets_root IS NULL OR (length(secrets_root) = 36 AND secrets_root = lower(secrets_root)));
