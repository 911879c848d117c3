-- The audit trail: one row per security-relevant event, appended and never changed; removed
-- only by the retention pass (AUDIT_RETENTION_DAYS). `id` sorts in the order events were
-- recorded (the time, then a per-process sequence, then the replica), which is the cursor of
-- the listing. `detail` is JSON and never holds a secret.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT,
    target_kind TEXT,
    target TEXT,
    address TEXT,
    replica TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_target ON audit_events (target, id);
