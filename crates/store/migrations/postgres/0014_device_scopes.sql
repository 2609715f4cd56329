-- Which org subtrees each device lies in: one row per ancestor of the
-- device's org at depth 2 or deeper, the org itself included (a device of
-- org /1/7/42/ has rows for 7 and 42; depth 1 is `devices.hierarchy_id`).
--
-- A list for a sub-org Admin ("every device in the subtree of 7, by id")
-- reads its page from this key in id order, so the first page costs the
-- same whatever the size of the subtree. Without it the list gathered the
-- subtree's org ids and then either walked every device of the hierarchy
-- by id or sorted all of the subtree's devices (5.7 ms p99 for a level-2
-- Admin at 10M devices, 11 ms on PostgreSQL at 1M).
--
-- Maintained by the store (arbor_store::Tx) wherever a device gets an org
-- (insert, transfer, org delete) or an org a new parent (move_subtree);
-- rows go with their device. Keep in step with ../sqlite/0014_device_scopes.sql.
CREATE TABLE device_scopes (
    ancestor_id BIGINT NOT NULL REFERENCES organizations(id),
    device_id   BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    PRIMARY KEY (ancestor_id, device_id)
);
CREATE INDEX device_scopes_device ON device_scopes(device_id);

-- Existing devices: the orgs whose subtree range holds the device's org.
INSERT INTO device_scopes (ancestor_id, device_id)
SELECT a.id, d.id
FROM organizations a
JOIN organizations o
  ON o.path >= a.path AND o.path < substr(a.path, 1, length(a.path) - 1) || '0'
JOIN devices d ON d.org_id = o.id
WHERE a.depth >= 2;
