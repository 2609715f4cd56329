-- The device data plane (issue 12): current values, history, pin
-- properties. Keep in step with ../postgres/0016_device_data.sql.
--
-- The value tables of 0001 were never written (no code used them); they are
-- rebuilt in the shape the device API needs, keeping any row they hold.
--
-- A value is a number (`num_value`: integer and double datastreams), a text
-- (`text_value`: string and enum datastreams), or — `multi` = 1 — several
-- parts (`&value=lon&value=lat`) kept as a JSON array in `text_value`.
-- Values are device data, not authorization facts: no trigger of 0002
-- fires on these tables, and a value write is not an audit event (SPEC.md
-- section 7). Every row goes with its device (ON DELETE CASCADE).

-- The latest value per (device, pin): what `get` answers.
CREATE TABLE datastream_values_v15 (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin        INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    num_value  REAL,
    text_value TEXT,
    multi      INTEGER NOT NULL DEFAULT 0 CHECK (multi IN (0,1)),
    updated_at INTEGER NOT NULL,
    CHECK (num_value IS NOT NULL OR text_value IS NOT NULL),
    PRIMARY KEY (device_id, pin)
) WITHOUT ROWID;
INSERT INTO datastream_values_v15 (device_id, pin, text_value, updated_at)
    SELECT device_id, pin, value, updated_at FROM datastream_values;
DROP TABLE datastream_values;
ALTER TABLE datastream_values_v15 RENAME TO datastream_values;

-- Every accepted value, read by range per (device, pin, time). Ids are not
-- referenced from anywhere, so a plain rowid (no AUTOINCREMENT bookkeeping
-- per insert) serves as the tie-breaker of values at the same millisecond.
CREATE TABLE datastream_history_v15 (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin        INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    at         INTEGER NOT NULL,
    num_value  REAL,
    text_value TEXT,
    multi      INTEGER NOT NULL DEFAULT 0 CHECK (multi IN (0,1)),
    CHECK (num_value IS NOT NULL OR text_value IS NOT NULL)
);
INSERT INTO datastream_history_v15 (device_id, pin, at, text_value)
    SELECT device_id, pin, at, value FROM datastream_history ORDER BY id;
DROP TABLE datastream_history;
ALTER TABLE datastream_history_v15 RENAME TO datastream_history;
CREATE INDEX datastream_history_device ON datastream_history(device_id, pin, at);

-- Widget properties a device sets per pin (`update/property`): label,
-- color, isDisabled, … ; `value` is text, a JSON array for `labels`.
CREATE TABLE device_pin_properties (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin        INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, pin, name)
) WITHOUT ROWID;

-- Device events (`logEvent`) keep the table of 0001/0003; the timeline
-- reads a device's newest first.
CREATE INDEX device_events_timeline ON device_events(device_id, at, id);
DROP INDEX device_events_device;
