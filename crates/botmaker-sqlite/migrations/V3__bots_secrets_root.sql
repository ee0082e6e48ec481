-- Which secrets root holds each bot's secrets (issue 16): the id of that root, a
-- canonical lowercase hyphenated UUID, or NULL for a bot registered before this
-- migration ("legacy"), which `migrate` then adopts into the root that holds its
-- directory. The column is added in place (nullable, so SQLite accepts its CHECK on
-- ADD COLUMN); existing rows keep every value and get NULL. The same version and
-- meaning as PostgreSQL's V3__bots_secrets_root.sql.
ALTER TABLE bots ADD COLUMN secrets_root TEXT NULL
    CHECK (secrets_root IS NULL OR (length(secrets_root) = 36 AND secrets_root = lower(secrets_root)));
