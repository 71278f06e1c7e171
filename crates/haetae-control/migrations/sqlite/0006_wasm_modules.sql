-- Proxy-Wasm filter modules (issue 12): every uploaded version of every module name, with
-- its bytes, SHA-256 and optional Ed25519 signature. Policies pin a module by SHA-256 when
-- they are published; a version that a stored policy (draft or latest) names cannot be
-- deleted. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE wasm_modules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    -- 64 lowercase hex digits.
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    bytes        BLOB NOT NULL,
    -- 128 hex digits, or NULL for an unsigned module.
    signature    TEXT,
    -- The id of the trusted key the signature verified against (NULL when no key was
    -- configured at upload).
    key_id       TEXT,
    description  TEXT NOT NULL DEFAULT '',
    uploaded_by  TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL,
    UNIQUE (name, version)
);
CREATE INDEX wasm_modules_sha256 ON wasm_modules (sha256);
