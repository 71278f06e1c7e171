-- Alert rules, notifiers (webhooks and SIEM forwarders) and the alerts raised. Rules and
-- notifiers are stored as their JSON documents (validated by the Control Center); times are
-- microseconds since the Unix epoch (UTC).

CREATE TABLE alert_rules (
    id          TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE notifiers (
    id          TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY NOT NULL,
    ts          BIGINT NOT NULL,
    rule_id     TEXT NOT NULL,
    severity    TEXT NOT NULL,
    summary     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    ack_by      TEXT,
    ack_at      BIGINT
);
CREATE INDEX alerts_ts ON alerts (ts);
CREATE INDEX alerts_rule_ts ON alerts (rule_id, ts);
