-- haetae Control Center schema, PostgreSQL dialect. Times are microseconds since the Unix epoch
-- (UTC); event bodies are the ECS JSON exactly as received.

CREATE TABLE events (
    id          TEXT PRIMARY KEY NOT NULL,
    ts          BIGINT NOT NULL,
    component   TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    severity    BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    user_id     TEXT,
    device_id   TEXT,
    service_id  TEXT,
    source_ip   TEXT,
    filter_id   TEXT,
    instance    TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_service_ts ON events (service_id, ts);
CREATE INDEX events_user_ts ON events (user_id, ts);
CREATE INDEX events_device_ts ON events (device_id, ts);
CREATE INDEX events_action_ts ON events (action, ts);
CREATE INDEX events_component_ts ON events (component, ts);
CREATE INDEX events_outcome_ts ON events (outcome, ts);

CREATE TABLE users (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL,
    failed_logins     BIGINT NOT NULL DEFAULT 0,
    locked_until      BIGINT,
    disabled          BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    last_used   BIGINT,
    revoked     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY NOT NULL,
    ts         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);

CREATE TABLE policy_draft (
    id          BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    snapshot    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE policy_versions (
    version     BIGINT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL,
    author      TEXT NOT NULL,
    comment     TEXT NOT NULL,
    snapshot    TEXT NOT NULL
);

CREATE TABLE requirements (
    service_id  TEXT NOT NULL,
    control     TEXT NOT NULL,
    PRIMARY KEY (service_id, control)
);

CREATE TABLE gateways (
    instance        TEXT PRIMARY KEY NOT NULL,
    last_seen       BIGINT NOT NULL,
    policy_version  BIGINT,
    detail          TEXT NOT NULL
);
