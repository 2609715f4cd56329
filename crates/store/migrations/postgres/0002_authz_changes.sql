-- Change feed of the facts authorization decisions read, for the in-process
-- decision cache (arbor-app `cache`). Keep in step with
-- ../sqlite/0002_authz_changes.sql, which explains the design.
CREATE TABLE authz_version (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL,
    floor BIGINT NOT NULL
);
INSERT INTO authz_version (id, value, floor) VALUES (1, 0, 0);

CREATE TABLE authz_changes (
    version BIGINT,
    kind    TEXT NOT NULL CHECK (kind IN ('user', 'org', 'device', 'session')),
    id      BIGINT NOT NULL
);
CREATE INDEX authz_changes_version ON authz_changes(version);

-- Records the change of one row: TG_ARGV[0] is the kind, TG_ARGV[1] the
-- column holding the id. Both the old and the new row are recorded.
CREATE FUNCTION authz_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO authz_changes (kind, id)
        VALUES (TG_ARGV[0], (to_jsonb(OLD) ->> TG_ARGV[1])::BIGINT);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO authz_changes (kind, id)
        VALUES (TG_ARGV[0], (to_jsonb(NEW) ->> TG_ARGV[1])::BIGINT);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER authz_users AFTER UPDATE OF status OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('user', 'id');
CREATE TRIGGER authz_memberships AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('user', 'user_id');
CREATE TRIGGER authz_role_permissions AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('org', 'org_id');
CREATE TRIGGER authz_organizations AFTER UPDATE OF path, parent_id OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('org', 'id');
CREATE TRIGGER authz_devices AFTER UPDATE OF org_id, owner_id OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('device', 'id');
CREATE TRIGGER authz_sessions AFTER UPDATE OF revoked_at, expires_at, user_id OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('session', 'id');
