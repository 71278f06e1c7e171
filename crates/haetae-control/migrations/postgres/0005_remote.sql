-- Remote support (issue 10): each agent's grade and the networks it may log in from, the
-- key the Center signs session policies with, and the history of support sessions (chat,
-- file-transfer records, consent and control events) that agent consoles report. Times are
-- microseconds since the Unix epoch (UTC).

CREATE TABLE remote_agents (
    user_id     BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grade       TEXT NOT NULL CHECK (grade IN ('indirect', 'direct')),
    -- Comma-separated IP networks (CIDR); empty = from anywhere.
    allow_from  TEXT NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL
);

-- The Ed25519 seed (hex) every Center sharing this database signs policies with.
CREATE TABLE remote_signing_key (
    id          BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seed_hex    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE remote_sessions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SHA-256 of the relay's session id (the id itself is not stored).
    sid_hash    TEXT NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    grade       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    end_reason  TEXT
);
CREATE INDEX remote_sessions_started ON remote_sessions (started_at);

CREATE TABLE remote_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  BIGINT NOT NULL REFERENCES remote_sessions (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX remote_history_session ON remote_history (session_id, id);
