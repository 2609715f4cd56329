-- Locations, tags and the online state of devices (issue 11, items 2 and 6).
-- Keep in step with ../sqlite/0011_places_tags.sql. The tables locations,
-- location_users, tags, device_tags and user_tags exist since 0001; this adds
-- what the API and the list filters need.

-- The hierarchy a location belongs to: the root of its org, or of its owning
-- user's org when the store created it. Nothing crosses between hierarchies.
ALTER TABLE locations ADD COLUMN hierarchy_id BIGINT REFERENCES organizations(id);
CREATE INDEX locations_org ON locations(org_id, id);
CREATE INDEX locations_owner ON locations(owner_user_id, id);
CREATE INDEX location_users_user ON location_users(user_id);

-- Tag names are unique per org ignoring case, in the folded form the store
-- computes in Rust (`text::fold`), like device names (0008).
ALTER TABLE tags ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
ALTER TABLE tags ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE tags SET name_folded = lower(name);
CREATE UNIQUE INDEX tags_org_name_folded ON tags(org_id, name_folded);
-- The list filter `tag=`: devices (or users) having a tag of that name.
CREATE INDEX tags_name_folded ON tags(name_folded);
CREATE INDEX device_tags_tag ON device_tags(tag_id, device_id);
CREATE INDEX user_tags_tag ON user_tags(tag_id, user_id);

-- When the device last called the device API (unix ms); NULL: never. A
-- device is online while this lies within `device_heartbeat_secs`.
ALTER TABLE devices ADD COLUMN last_seen_at BIGINT;
CREATE INDEX devices_last_seen ON devices(last_seen_at, id);
CREATE INDEX devices_location ON devices(location_id, id);
