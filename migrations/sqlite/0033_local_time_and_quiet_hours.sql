-- The workspace's sending rules (one row, JSON: default time zone, quiet hours and their
-- per-country overrides, and the rules later steps add), set on the admin Settings page.
CREATE TABLE workspace_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    rules      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by INTEGER REFERENCES staff_users(id) ON DELETE SET NULL
);

-- A broadcast's timing (JSON: a local time in each customer's zone, an expiry, an admin's
-- quiet-hours exemption), when it expires once started, and how many deliveries expired.
ALTER TABLE broadcasts ADD COLUMN timing TEXT;
ALTER TABLE broadcasts ADD COLUMN expires_at TEXT;
ALTER TABLE broadcasts ADD COLUMN expired_count INTEGER NOT NULL DEFAULT 0;

-- Its waves: each distinct not-before time its deliveries got, with the zones it is for.
CREATE TABLE broadcast_waves (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    zones        TEXT NOT NULL,
    PRIMARY KEY (broadcast_id, at)
);

-- Every pending delivery has a not-before time (its wave, or its retry), and claiming walks
-- only the due ones: at a million deliveries waiting for tomorrow's waves, an idle claim reads
-- none of them.
UPDATE deliveries SET next_attempt_at = created_at WHERE next_attempt_at IS NULL AND state = 'pending';
CREATE INDEX deliveries_due ON deliveries(broadcast_id, next_attempt_at, id) WHERE state = 'pending';
-- Leases that ran out are found without walking the pending ones.
CREATE INDEX deliveries_claimed ON deliveries(broadcast_id, claimed_until) WHERE state = 'sending';
