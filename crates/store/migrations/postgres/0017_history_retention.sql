-- History retention per device template (issue 12, item 4). Keep in step
-- with ../sqlite/0017_history_retention.sql.
--
-- How many days the values and events a template's devices send are kept
-- (datastream_history, device_events); NULL: the server's default
-- (`device_api.history_retention_days`, 30). The pruner (crates/store/src/
-- retention.rs) deletes older rows in the background, in short batches,
-- through the existing indexes datastream_history(device_id, pin, at) and
-- device_events(device_id, at, id): no new index, so a value write costs
-- what it did.
ALTER TABLE device_templates ADD COLUMN history_retention_days BIGINT
    CHECK (history_retention_days BETWEEN 1 AND 3650);
