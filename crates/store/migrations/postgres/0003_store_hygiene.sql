-- Store hygiene. Keep in step with ../sqlite/0003_store_hygiene.sql.
--
-- 1. Ids are never reused: nothing to change here. Identity columns draw
-- from sequences, which never hand out a value twice, even after the row
-- holding the largest id is deleted (SQLite needed AUTOINCREMENT for that).
--
-- 2. Names are searched in a folded form the store computes in Rust
-- (arbor_store `text::fold`), not with LOWER(), which follows this
-- database's locale here and folds only ASCII on SQLite. Filled with
-- lower(name) now; the `fold_names` task makes the store refold every row
-- in Rust once, right after migrating (`Store::migrate`).
--
-- 3. A commit bumps authz_version only if it recorded change rows
-- (`Tx::commit`): the partial index below finds a transaction's unstamped
-- rows without touching the stamped ones.
ALTER TABLE organizations ADD COLUMN name_folded TEXT;
UPDATE organizations SET name_folded = lower(name);
ALTER TABLE organizations ALTER COLUMN name_folded SET NOT NULL;
ALTER TABLE users ADD COLUMN name_folded TEXT;
UPDATE users SET name_folded = lower(name);
ALTER TABLE users ALTER COLUMN name_folded SET NOT NULL;

CREATE INDEX authz_changes_unstamped ON authz_changes(version) WHERE version IS NULL;

-- Work the store does in Rust after migrating, once per row of this table.
CREATE TABLE store_upkeep (task TEXT PRIMARY KEY);
INSERT INTO store_upkeep (task) VALUES ('fold_names');
