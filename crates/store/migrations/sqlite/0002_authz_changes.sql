-- Change feed of the facts authorization decisions read, for the in-process
-- decision cache (arbor-app `cache`). Keep in step with
-- ../postgres/0002_authz_changes.sql.
--
-- `authz_version.value` is bumped by every committing write transaction
-- (`Tx::commit`), which also stamps that transaction's change rows with the
-- new value. The triggers below record, at the database level, every row
-- change that can alter a decision, so no code path (nor a hand-written SQL
-- statement) can change a fact without the cache hearing of it. A node that
-- has seen version V reads the rows with V < version <= current and drops
-- exactly the cached facts they name. Rows at or below `floor` have been
-- pruned; a cache older than the floor starts afresh.
CREATE TABLE authz_version (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL,
    floor INTEGER NOT NULL
);
INSERT INTO authz_version (id, value, floor) VALUES (1, 0, 0);

CREATE TABLE authz_changes (
    -- NULL until the writing transaction commits.
    version INTEGER,
    -- user: status or memberships of users.id; org: the path, the parent or
    -- a role's permission set in organizations.id; device: org or owner of
    -- devices.id; session: revocation or expiry of sessions.id.
    kind    TEXT NOT NULL CHECK (kind IN ('user', 'org', 'device', 'session')),
    id      INTEGER NOT NULL
);
CREATE INDEX authz_changes_version ON authz_changes(version);

CREATE TRIGGER authz_users_update AFTER UPDATE OF status ON users
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', NEW.id); END;
CREATE TRIGGER authz_users_delete AFTER DELETE ON users
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', OLD.id); END;

CREATE TRIGGER authz_memberships_insert AFTER INSERT ON memberships
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', NEW.user_id); END;
CREATE TRIGGER authz_memberships_update AFTER UPDATE ON memberships
BEGIN
    INSERT INTO authz_changes (kind, id) VALUES ('user', OLD.user_id);
    INSERT INTO authz_changes (kind, id) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER authz_memberships_delete AFTER DELETE ON memberships
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', OLD.user_id); END;

CREATE TRIGGER authz_role_permissions_insert AFTER INSERT ON role_permissions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', NEW.org_id); END;
CREATE TRIGGER authz_role_permissions_update AFTER UPDATE ON role_permissions
BEGIN
    INSERT INTO authz_changes (kind, id) VALUES ('org', OLD.org_id);
    INSERT INTO authz_changes (kind, id) VALUES ('org', NEW.org_id);
END;
CREATE TRIGGER authz_role_permissions_delete AFTER DELETE ON role_permissions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', OLD.org_id); END;

CREATE TRIGGER authz_organizations_update AFTER UPDATE OF path, parent_id ON organizations
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', NEW.id); END;
CREATE TRIGGER authz_organizations_delete AFTER DELETE ON organizations
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', OLD.id); END;

CREATE TRIGGER authz_devices_update AFTER UPDATE OF org_id, owner_id ON devices
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('device', NEW.id); END;
CREATE TRIGGER authz_devices_delete AFTER DELETE ON devices
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('device', OLD.id); END;

CREATE TRIGGER authz_sessions_update AFTER UPDATE OF revoked_at, expires_at, user_id ON sessions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('session', NEW.id); END;
CREATE TRIGGER authz_sessions_delete AFTER DELETE ON sessions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('session', OLD.id); END;
