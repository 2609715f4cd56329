-- Arbor schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- same tables, columns and constraints; only types differ.
-- Timestamps are unix milliseconds (INTEGER); flags are INTEGER 0/1; ids are
-- rowid aliases. Declared types stay within INTEGER/TEXT/REAL so the sqlx Any
-- driver can read every column.

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY,
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
    CHECK ((parent_id IS NULL) = (org_type = 'ROOT'))
);
CREATE INDEX organizations_path ON organizations(path);
CREATE INDEX organizations_parent ON organizations(parent_id);

-- A hierarchy is named by its root organization.
CREATE TABLE hierarchies (
    root_org_id           INTEGER PRIMARY KEY REFERENCES organizations(id),
    depth_limit           INTEGER NOT NULL DEFAULT 4 CHECK (depth_limit BETWEEN 1 AND 16),
    multi_org_membership  INTEGER NOT NULL DEFAULT 0 CHECK (multi_org_membership IN (0,1)),
    signup_mode           TEXT NOT NULL DEFAULT 'invite_only' CHECK (signup_mode IN ('invite_only','open')),
    allowed_email_domains TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL
);

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    email            TEXT NOT NULL,
    -- Lower-cased in Rust (Unicode-aware); the unique constraint makes email
    -- unique per server ignoring case.
    email_normalized TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    password_hash    TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending','active','suspended')),
    locale           TEXT NOT NULL DEFAULT 'en',
    created_at       INTEGER NOT NULL
);

CREATE TABLE roles (
    id           INTEGER PRIMARY KEY,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    name_lower   TEXT NOT NULL,
    builtin      TEXT CHECK (builtin IN ('admin','staff','user')),
    position     INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name_lower),
    UNIQUE (hierarchy_id, builtin)
);

-- perms(org, role): permission string ids, space separated, never bits (the
-- catalog order may change between releases).
CREATE TABLE role_permissions (
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    role_id     INTEGER NOT NULL REFERENCES roles(id),
    permissions TEXT NOT NULL,
    PRIMARY KEY (org_id, role_id)
);

CREATE TABLE memberships (
    user_id    INTEGER NOT NULL REFERENCES users(id),
    org_id     INTEGER NOT NULL REFERENCES organizations(id),
    role_id    INTEGER NOT NULL REFERENCES roles(id),
    home       INTEGER NOT NULL CHECK (home IN (0,1)),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_org_role ON memberships(org_id, role_id);
CREATE UNIQUE INDEX memberships_one_home ON memberships(user_id) WHERE home = 1;

CREATE TABLE permission_templates (
    id           INTEGER PRIMARY KEY,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at   INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name)
);
CREATE TABLE permission_template_sets (
    template_id INTEGER NOT NULL REFERENCES permission_templates(id) ON DELETE CASCADE,
    role_id     INTEGER NOT NULL REFERENCES roles(id),
    permissions TEXT NOT NULL,
    PRIMARY KEY (template_id, role_id)
);

CREATE TABLE device_templates (
    id           INTEGER PRIMARY KEY,
    hierarchy_id INTEGER NOT NULL REFERENCES hierarchies(root_org_id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (hierarchy_id, name)
);
CREATE TABLE template_datastreams (
    id          INTEGER PRIMARY KEY,
    template_id INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    pin         INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    name        TEXT NOT NULL,
    value_type  TEXT NOT NULL CHECK (value_type IN ('integer','double','string','enum')),
    min_value   REAL,
    max_value   REAL,
    units       TEXT NOT NULL DEFAULT '',
    UNIQUE (template_id, pin)
);
CREATE TABLE template_events (
    id          INTEGER PRIMARY KEY,
    template_id INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('info','warning','critical','content')),
    UNIQUE (template_id, code)
);
CREATE TABLE template_metafields (
    id            INTEGER PRIMARY KEY,
    template_id   INTEGER NOT NULL REFERENCES device_templates(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    value_type    TEXT NOT NULL,
    default_value TEXT NOT NULL DEFAULT '',
    UNIQUE (template_id, name)
);
-- A template must be enabled for an org before devices of it live there.
CREATE TABLE org_templates (
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    template_id INTEGER NOT NULL REFERENCES device_templates(id),
    PRIMARY KEY (org_id, template_id)
);

CREATE TABLE locations (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER REFERENCES organizations(id),
    owner_user_id INTEGER REFERENCES users(id),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 48),
    address       TEXT NOT NULL DEFAULT '',
    lat           REAL,
    lon           REAL,
    created_at    INTEGER NOT NULL,
    CHECK ((org_id IS NULL) <> (owner_user_id IS NULL))
);
CREATE TABLE location_users (
    location_id INTEGER NOT NULL REFERENCES locations(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (location_id, user_id)
);

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
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
CREATE INDEX devices_org ON devices(org_id, id);
CREATE INDEX devices_owner ON devices(owner_id, id);
CREATE INDEX devices_template ON devices(template_id);

CREATE TABLE device_metafields (
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE datastream_values (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin        INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, pin)
);
CREATE TABLE datastream_history (
    id        INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pin       INTEGER NOT NULL CHECK (pin BETWEEN 0 AND 255),
    value     TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX datastream_history_device ON datastream_history(device_id, pin, at);

CREATE TABLE device_events (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    code        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('info','warning','critical','content')),
    description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_events_device ON device_events(device_id, at);

CREATE TABLE tags (
    id     INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    name   TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 24),
    UNIQUE (org_id, name)
);
CREATE TABLE device_tags (
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    tag_id    INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (device_id, tag_id)
);
CREATE TABLE user_tags (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag_id  INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, tag_id)
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY,
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

CREATE TABLE password_resets (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    to_address TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    sent_at    INTEGER,
    last_error TEXT
);
CREATE INDEX outbox_unsent ON outbox(sent_at, id);

-- Audit rows outlive the users and orgs they name: no foreign keys here.
CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY,
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
CREATE INDEX audit_events_target_org ON audit_events(target_org_id, id);
CREATE INDEX audit_events_actor ON audit_events(actor_user_id, id);
