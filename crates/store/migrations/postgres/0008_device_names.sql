-- Devices are searched by name in the folded form the store computes in Rust
-- (`text::fold`), like organizations and users (0003). Keep in step with
-- ../sqlite/0008_device_names.sql. Filled with lower(name) here; the
-- `fold_names` task makes the store refold non-ASCII names in Rust once.
ALTER TABLE devices ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE devices SET name_folded = lower(name);
INSERT INTO store_upkeep (task) VALUES ('fold_names') ON CONFLICT (task) DO NOTHING;
