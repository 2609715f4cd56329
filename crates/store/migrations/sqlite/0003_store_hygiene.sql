-- no-transaction
-- Store hygiene. Keep in step with ../postgres/0003_store_hygiene.sql.
--
-- 1. Ids are never reused. An `INTEGER PRIMARY KEY` without AUTOINCREMENT hands out max(id) + 1, so
-- the id of a deleted newest row came back — and with it that row's audit
-- history, change-feed rows and every outside reference to it, now naming a
-- new org, user or device. Each table with an id is rebuilt with
-- `INTEGER PRIMARY KEY AUTOINCREMENT` (columns, constraints, data, indexes
-- and the 0002 triggers as they were), and its sqlite_sequence starts past
-- every id the audit log and the change feed still name, so ids deleted
-- before this migration are not handed out again either.
--
-- 2. Names are searched in a folded form the store computes in Rust
-- (`organizations.name_folded`, `users.name_folded`; arbor_store `text::fold`),
-- not with LOWER(), which folds only ASCII here and follows the locale on
-- PostgreSQL. The rebuild fills them with lower(name); the `fold_names` task
-- in store_upkeep makes the store refold every row in Rust once, right after
-- migrating (`Store::migrate`).
--
-- 3. A commit bumps authz_version only if it recorded change rows
-- (`Tx::commit`): the partial index below finds a transaction's unstamped
-- rows without touching the stamped ones.
--
-- SQLite's procedure for changing a table's definition
-- (https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off
-- (a no-op inside a transaction, hence `no-transaction` above and the
-- explicit BEGIN/COMMIT), rebuild, check the foreign keys, commit, foreign
-- keys on again (the store also re-enables them on the migrating
-- connection). Safe to run again if the process dies between the COMMIT and
-- sqlx's bookkeeping: a second run rebuilds the same tables again.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE organizations_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id   INTEGER REFERENCES organizations(id),
    -- Materialized path '/root/../self/' (arbor_core::OrgPath::encode). SQLite
    -- compares TEXT bytewise (BINARY collation), which subtree_range() needs.
    path        TEXT NOT NULL,
    depth       INTEGER NOT NULL CHECK (depth >= 1),
    org_type    TEXT NOT NULL CHECK (org_type IN ('ROOT','BUSINESS','PERSONAL','BRANCH','DISTRIBUTOR','CONTRACTOR','INSTALLER','RESELLER')),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    description TEXT NOT NULL DEFAULT '',
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    unit_system TEXT NOT NULL DEFAULT 'metric' CHECK (unit_system IN ('metric','imperial')),
    contact     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    -- `name` as searched: Unicode lower case, computed by the store.
    name_folded TEXT NOT NULL,
    CHECK ((parent_id IS NULL) = (org_type = 'ROOT'))
);
INSERT INTO organizations_v3 (id, parent_id, path, depth, org_type, name, description, timezone, unit_system, contact, created_at, name_folded)
    SELECT id, parent_id, path, depth, org_type, name, description, timezone, unit_system, contact, created_at, lower(name) FROM organizations;
DROP TABLE organizations;
ALTER TABLE organizations_v3 RENAME TO organizations;
CREATE INDEX organizations_path ON organizations(path);
CREATE INDEX organizations_parent ON organizations(parent_id);
CREATE TRIGGER authz_organizations_update AFTER UPDATE OF path, parent_id ON organizations
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', NEW.id); END;
CREATE TRIGGER authz_organizations_delete AFTER DELETE ON organizations
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('org', OLD.id); END;
DELETE FROM sqlite_sequence WHERE name = 'organizations';
INSERT INTO sqlite_sequence (name, seq) SELECT 'organizations', MAX(
    COALESCE((SELECT MAX(id) FROM organizations), 0),
    COALESCE((SELECT MAX(target_org_id) FROM audit_events), 0),
    COALESCE((SELECT MAX(actor_home_org_id) FROM audit_events), 0),
    COALESCE((SELECT MAX(CAST(substr(target, 5) AS INTEGER)) FROM audit_events WHERE target LIKE 'org:%'), 0),
    COALESCE((SELECT MAX(id) FROM authz_changes WHERE kind = 'org'), 0));

CREATE TABLE users_v3 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    email            TEXT NOT NULL,
    -- Lower-cased in Rust (Unicode-aware); the unique constraint makes email
    -- unique per server ignoring case.
    email_normalized TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    password_hash    TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending','active','suspended')),
    locale           TEXT NOT NULL DEFAULT 'en',
    created_at       INTEGER NOT NULL,
    -- `name` as searched: Unicode lower case, computed by the store.
    name_folded      TEXT NOT NULL
);
INSERT INTO users_v3 (id, email, email_normalized, name, password_hash, status, locale, created_at, name_folded)
    SELECT id, email, email_normalized, name, password_hash, status, locale, created_at, lower(name) FROM users;
DROP TABLE users;
ALTER TABLE users_v3 RENAME TO users;
CREATE TRIGGER authz_users_update AFTER UPDATE OF status ON users
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', NEW.id); END;
CREATE TRIGGER authz_users_delete AFTER DELETE ON users
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('user', OLD.id); END;
DELETE FROM sqlite_sequence WHERE name = 'users';
INSERT INTO sqlite_sequence (name, seq) SELECT 'users', MAX(
    COALESCE((SELECT MAX(id) FROM users), 0),
    COALESCE((SELECT MAX(actor_user_id) FROM audit_events), 0),
    COALESCE((SELECT MAX(CAST(substr(target, 6) AS INTEGER)) FROM audit_events WHERE target LIKE 'user:%'), 0),
    COALESCE((SELECT MAX(id) FROM authz_changes WHERE kind = 'user'), 0));

CREATE TABLE roles_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    name_lower   TEXT NOT NULL,
    builtin      TEXT CHECK (builtin IN ('admin','staff','user')),
    position     INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name_lower),
    UNIQUE (hierarchy_id, builtin)
);
INSERT INTO roles_v3 (id, hierarchy_id, name, name_lower, builtin, position)
    SELECT id, hierarchy_id, name, name_lower, builtin, position FROM roles;
DROP TABLE roles;
ALTER TABLE roles_v3 RENAME TO roles;
DELETE FROM sqlite_sequence WHERE name = 'roles';
INSERT INTO sqlite_sequence (name, seq) SELECT 'roles', MAX(
    COALESCE((SELECT MAX(id) FROM roles), 0),
    COALESCE((SELECT MAX(CAST(substr(target, 6) AS INTEGER)) FROM audit_events WHERE target LIKE 'role:%'), 0));

CREATE TABLE permission_templates_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at   INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name)
);
INSERT INTO permission_templates_v3 (id, hierarchy_id, name, created_at)
    SELECT id, hierarchy_id, name, created_at FROM permission_templates;
DROP TABLE permission_templates;
ALTER TABLE permission_templates_v3 RENAME TO permission_templates;
DELETE FROM sqlite_sequence WHERE name = 'permission_templates';
INSERT INTO sqlite_sequence (name, seq) SELECT 'permission_templates', MAX(
    COALESCE((SELECT MAX(id) FROM permission_templates), 0),
    COALESCE((SELECT MAX(CAST(substr(target, 10) AS INTEGER)) FROM audit_events WHERE target LIKE 'template:%'), 0));

CREATE TABLE device_templates_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name)
);
INSERT INTO device_templates_v3 (id, hierarchy_id, name, description, created_at)
    SELECT id, hierarchy_id, name, description, created_at FROM device_templates;
DROP TABLE device_templates;
ALTER TABLE device_templates_v3 RENAME TO device_templates;
DELETE FROM sqlite_sequence WHERE name = 'device_templates';
INSERT INTO sqlite_sequence (name, seq) SELECT 'device_templates', MAX(
    COALESCE((SELECT MAX(id) FROM device_templates), 0));

CREATE TABLE template_datastreams_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    pin         INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    name        TEXT NOT NULL,
    value_type  TEXT NOT NULL CHECK (value_type IN ('integer','double','string','enum')),
    min_value   REAL,
    max_value   REAL,
    units       TEXT NOT NULL DEFAULT '',
    UNIQUE (template_id, pin)
);
INSERT INTO template_datastreams_v3 (id, template_id, pin, name, value_type, min_value, max_value, units)
    SELECT id, template_id, pin, name, value_type, min_value, max_value, units FROM template_datastreams;
DROP TABLE template_datastreams;
ALTER TABLE template_datastreams_v3 RENAME TO template_datastreams;
DELETE FROM sqlite_sequence WHERE name = 'template_datastreams';
INSERT INTO sqlite_sequence (name, seq) SELECT 'template_datastreams', MAX(
    COALESCE((SELECT MAX(id) FROM template_datastreams), 0));

CREATE TABLE template_events_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('info','warning','critical','content')),
    UNIQUE (template_id, code)
);
INSERT INTO template_events_v3 (id, template_id, code, name, level)
    SELECT id, template_id, code, name, level FROM template_events;
DROP TABLE template_events;
ALTER TABLE template_events_v3 RENAME TO template_events;
DELETE FROM sqlite_sequence WHERE name = 'template_events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'template_events', MAX(
    COALESCE((SELECT MAX(id) FROM template_events), 0));

CREATE TABLE template_metafields_v3 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id   INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    value_type    TEXT NOT NULL,
    default_value TEXT NOT NULL DEFAULT '',
    UNIQUE (template_id, name)
);
INSERT INTO template_metafields_v3 (id, template_id, name, value_type, default_value)
    SELECT id, template_id, name, value_type, default_value FROM template_metafields;
DROP TABLE template_metafields;
ALTER TABLE template_metafields_v3 RENAME TO template_metafields;
DELETE FROM sqlite_sequence WHERE name = 'template_metafields';
INSERT INTO sqlite_sequence (name, seq) SELECT 'template_metafields', MAX(
    COALESCE((SELECT MAX(id) FROM template_metafields), 0));

CREATE TABLE locations_v3 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER REFERENCES organizations(id),
    owner_user_id INTEGER REFERENCES users(id),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 48),
    address       TEXT NOT NULL DEFAULT '',
    lat           REAL,
    lon           REAL,
    created_at    INTEGER NOT NULL,
    CHECK ((org_id IS NULL) <> (owner_user_id IS NULL))
);
INSERT INTO locations_v3 (id, org_id, owner_user_id, name, address, lat, lon, created_at)
    SELECT id, org_id, owner_user_id, name, address, lat, lon, created_at FROM locations;
DROP TABLE locations;
ALTER TABLE locations_v3 RENAME TO locations;
DELETE FROM sqlite_sequence WHERE name = 'locations';
INSERT INTO sqlite_sequence (name, seq) SELECT 'locations', MAX(
    COALESCE((SELECT MAX(id) FROM locations), 0));

CREATE TABLE devices_v3 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Root org of the device's org; devices never leave their hierarchy.
    hierarchy_id    INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    template_id     INTEGER NOT NULL REFERENCES device_templates(id),
    -- Exactly one owner or none; the owner is a member of the device's org.
    owner_id        INTEGER REFERENCES users(id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    auth_token_hash TEXT NOT NULL UNIQUE,
    location_id     INTEGER REFERENCES locations(id),
    created_at      INTEGER NOT NULL,
    FOREIGN KEY (owner_id, org_id) REFERENCES memberships(user_id, org_id),
    FOREIGN KEY (org_id, template_id) REFERENCES org_templates(org_id, template_id)
);
INSERT INTO devices_v3 (id, hierarchy_id, org_id, template_id, owner_id, name, auth_token_hash, location_id, created_at)
    SELECT id, hierarchy_id, org_id, template_id, owner_id, name, auth_token_hash, location_id, created_at FROM devices;
DROP TABLE devices;
ALTER TABLE devices_v3 RENAME TO devices;
CREATE INDEX devices_org ON devices(org_id, id);
CREATE INDEX devices_owner ON devices(owner_id, id);
CREATE INDEX devices_template ON devices(template_id);
CREATE TRIGGER authz_devices_update AFTER UPDATE OF org_id, owner_id ON devices
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('device', NEW.id); END;
CREATE TRIGGER authz_devices_delete AFTER DELETE ON devices
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('device', OLD.id); END;
DELETE FROM sqlite_sequence WHERE name = 'devices';
INSERT INTO sqlite_sequence (name, seq) SELECT 'devices', MAX(
    COALESCE((SELECT MAX(id) FROM devices), 0),
    COALESCE((SELECT MAX(CAST(substr(target, 8) AS INTEGER)) FROM audit_events WHERE target LIKE 'device:%'), 0),
    COALESCE((SELECT MAX(id) FROM authz_changes WHERE kind = 'device'), 0));

CREATE TABLE datastream_history_v3 (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin       INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    value     TEXT NOT NULL,
    at        INTEGER NOT NULL
);
INSERT INTO datastream_history_v3 (id, device_id, pin, value, at)
    SELECT id, device_id, pin, value, at FROM datastream_history;
DROP TABLE datastream_history;
ALTER TABLE datastream_history_v3 RENAME TO datastream_history;
CREATE INDEX datastream_history_device ON datastream_history(device_id, pin, at);
DELETE FROM sqlite_sequence WHERE name = 'datastream_history';
INSERT INTO sqlite_sequence (name, seq) SELECT 'datastream_history', MAX(
    COALESCE((SELECT MAX(id) FROM datastream_history), 0));

CREATE TABLE device_events_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    code        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('info','warning','critical','content')),
    description TEXT NOT NULL DEFAULT ''
);
INSERT INTO device_events_v3 (id, device_id, at, code, level, description)
    SELECT id, device_id, at, code, level, description FROM device_events;
DROP TABLE device_events;
ALTER TABLE device_events_v3 RENAME TO device_events;
CREATE INDEX device_events_device ON device_events(device_id, at);
DELETE FROM sqlite_sequence WHERE name = 'device_events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'device_events', MAX(
    COALESCE((SELECT MAX(id) FROM device_events), 0));

CREATE TABLE tags_v3 (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    name   TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 24),
    UNIQUE (org_id, name)
);
INSERT INTO tags_v3 (id, org_id, name)
    SELECT id, org_id, name FROM tags;
DROP TABLE tags;
ALTER TABLE tags_v3 RENAME TO tags;
DELETE FROM sqlite_sequence WHERE name = 'tags';
INSERT INTO sqlite_sequence (name, seq) SELECT 'tags', MAX(
    COALESCE((SELECT MAX(id) FROM tags), 0));

CREATE TABLE sessions_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
INSERT INTO sessions_v3 (id, token_hash, user_id, created_at, last_seen_at, expires_at, revoked_at)
    SELECT id, token_hash, user_id, created_at, last_seen_at, expires_at, revoked_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v3 RENAME TO sessions;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TRIGGER authz_sessions_update AFTER UPDATE OF revoked_at, expires_at, user_id ON sessions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('session', NEW.id); END;
CREATE TRIGGER authz_sessions_delete AFTER DELETE ON sessions
BEGIN INSERT INTO authz_changes (kind, id) VALUES ('session', OLD.id); END;
DELETE FROM sqlite_sequence WHERE name = 'sessions';
INSERT INTO sqlite_sequence (name, seq) SELECT 'sessions', MAX(
    COALESCE((SELECT MAX(id) FROM sessions), 0),
    COALESCE((SELECT MAX(id) FROM authz_changes WHERE kind = 'session'), 0));

CREATE TABLE invitations_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    user_id     INTEGER REFERENCES users(id) ON DELETE CASCADE,
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    role_id     INTEGER NOT NULL REFERENCES roles(id),
    invited_by  INTEGER REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER
);
INSERT INTO invitations_v3 (id, token_hash, email, user_id, org_id, role_id, invited_by, created_at, expires_at, accepted_at)
    SELECT id, token_hash, email, user_id, org_id, role_id, invited_by, created_at, expires_at, accepted_at FROM invitations;
DROP TABLE invitations;
ALTER TABLE invitations_v3 RENAME TO invitations;
DELETE FROM sqlite_sequence WHERE name = 'invitations';
INSERT INTO sqlite_sequence (name, seq) SELECT 'invitations', MAX(
    COALESCE((SELECT MAX(id) FROM invitations), 0));

CREATE TABLE password_resets_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
INSERT INTO password_resets_v3 (id, token_hash, user_id, created_at, expires_at, used_at)
    SELECT id, token_hash, user_id, created_at, expires_at, used_at FROM password_resets;
DROP TABLE password_resets;
ALTER TABLE password_resets_v3 RENAME TO password_resets;
DELETE FROM sqlite_sequence WHERE name = 'password_resets';
INSERT INTO sqlite_sequence (name, seq) SELECT 'password_resets', MAX(
    COALESCE((SELECT MAX(id) FROM password_resets), 0));

CREATE TABLE outbox_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    to_address TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    sent_at    INTEGER,
    last_error TEXT
);
INSERT INTO outbox_v3 (id, created_at, to_address, subject, body, attempts, sent_at, last_error)
    SELECT id, created_at, to_address, subject, body, attempts, sent_at, last_error FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_unsent ON outbox(sent_at, id);
DELETE FROM sqlite_sequence WHERE name = 'outbox';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox', MAX(
    COALESCE((SELECT MAX(id) FROM outbox), 0));

CREATE TABLE audit_events_v3 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    actor_user_id INTEGER,
    actor_home_org_id INTEGER,
    target_org_id INTEGER,
    client_kind   TEXT NOT NULL CHECK (client_kind IN ('web','api','device','automation','cli')),
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('allowed','forbidden','hidden','failed')),
    details       TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO audit_events_v3 (id, at, actor_user_id, actor_home_org_id, target_org_id, client_kind, action, target, outcome, details)
    SELECT id, at, actor_user_id, actor_home_org_id, target_org_id, client_kind, action, target, outcome, details FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_v3 RENAME TO audit_events;
CREATE INDEX audit_events_target_org ON audit_events(target_org_id, id);
CREATE INDEX audit_events_actor ON audit_events(actor_user_id, id);
DELETE FROM sqlite_sequence WHERE name = 'audit_events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_events', MAX(
    COALESCE((SELECT MAX(id) FROM audit_events), 0));

CREATE INDEX IF NOT EXISTS authz_changes_unstamped ON authz_changes(version)
    WHERE version IS NULL;

-- Work the store does in Rust after migrating, once per row of this table.
CREATE TABLE IF NOT EXISTS store_upkeep (task TEXT PRIMARY KEY);
INSERT OR IGNORE INTO store_upkeep (task) VALUES ('fold_names');

-- Refuse to commit if the rebuild left a dangling reference.
CREATE TEMP TABLE ids_v3_guard (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO ids_v3_guard SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE ids_v3_guard;

COMMIT;
PRAGMA foreign_keys = ON;
