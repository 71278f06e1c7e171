-- Encrypted recordings of remote-support sessions (issue 10, point 7). The agent console
-- encrypts in the browser under a fresh AES-256-GCM key per recording and wraps that key to
-- the organisation's recording public key (ECDH P-256 + HKDF-SHA-256 + AES-256-GCM): the
-- Center keeps ciphertext and the wrapped key only; auditors decrypt with the private key,
-- which never reaches the Center. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE remote_recordings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- One recording per support session.
    session_id  BIGINT NOT NULL UNIQUE REFERENCES remote_sessions (id) ON DELETE CASCADE,
    agent       TEXT NOT NULL,
    alg         TEXT NOT NULL,
    -- Fingerprint of the recording public key the key is wrapped to.
    key_id      TEXT NOT NULL,
    -- The ephemeral P-256 public key and the wrapped recording key (hex).
    ephemeral   TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    chunks      BIGINT NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0,
    -- The index of the chunk marked last, once it arrived.
    last_index  BIGINT
);
CREATE INDEX remote_recordings_started ON remote_recordings (started_at);

CREATE TABLE remote_recording_chunks (
    recording_id BIGINT NOT NULL REFERENCES remote_recordings (id) ON DELETE CASCADE,
    idx          BIGINT NOT NULL,
    last         BIGINT NOT NULL CHECK (last IN (0, 1)),
    received_at  BIGINT NOT NULL,
    -- SHA-256 of the ciphertext: a repeated upload of the same chunk is recognised.
    sha256       TEXT NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (recording_id, idx)
);
