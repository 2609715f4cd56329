-- A hierarchy-wide device list (a root org's Admin: `d.hierarchy_id = $root`,
-- ordered by id) reads its page from this index in id order. Without it the
-- list walked every device of the server by id and tested each one's
-- hierarchy, so on a server of many tenants a small tenant created late
-- waited for the devices of all the others. Keep in step with
-- ../sqlite/0013_device_hierarchy_index.sql.
CREATE INDEX devices_hierarchy ON devices(hierarchy_id, id);
