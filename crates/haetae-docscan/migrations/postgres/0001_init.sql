-- haetae-docscan knowledge base (issue 5), PostgreSQL. Keep in step with ../sqlite/0001_init.sql.
-- Times are Unix milliseconds; lists and objects are JSON text.
CREATE TABLE vulnerabilities (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    cves        TEXT NOT NULL,
    description TEXT NOT NULL,
    links       TEXT NOT NULL,
    signature   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('confirmed', 'unconfirmed')),
    origin      TEXT NOT NULL CHECK (origin IN ('seed', 'learned', 'analyst')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE analyses (
    id          BIGSERIAL PRIMARY KEY,
    sha256      TEXT NOT NULL,
    path        TEXT,
    source      TEXT NOT NULL,
    file_type   TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    findings    TEXT NOT NULL,
    best_match  TEXT,
    best_score  INTEGER,
    created_at  BIGINT NOT NULL
);
CREATE INDEX analyses_sha256 ON analyses (sha256);
CREATE INDEX analyses_created ON analyses (created_at);

CREATE TABLE quarantine (
    id              TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL,
    original_path   TEXT NOT NULL,
    source          TEXT NOT NULL,
    verdict         TEXT NOT NULL,
    findings        TEXT NOT NULL,
    size            BIGINT NOT NULL,
    quarantined_at  BIGINT NOT NULL,
    state           TEXT NOT NULL
);

CREATE TABLE quarantine_audit (
    id        BIGSERIAL PRIMARY KEY,
    entry_id  TEXT NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX quarantine_audit_entry ON quarantine_audit (entry_id);
