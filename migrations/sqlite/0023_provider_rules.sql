-- Why Herald paused a broadcast by itself (a provider error that every further message would
-- meet, or too many recent failures); a resume clears it.
ALTER TABLE broadcasts ADD COLUMN pause_reason TEXT;

-- A failure that "Retry failed" may send again only from this time (WhatsApp's per-user
-- marketing limit asks for a day).
ALTER TABLE deliveries ADD COLUMN retry_not_before TEXT;

-- A broadcast's failures grouped by their reason, kept in step with the deliveries in the
-- same transactions as its other counters (the results never count deliveries).
CREATE TABLE broadcast_failure_reasons (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    -- A stable 63-bit hash of the reason, so the counter's key is a number.
    reason_key   INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    failed       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (broadcast_id, reason_key)
);

-- How often a provider answered that an address could not receive a message (not on
-- WhatsApp, handset off, mailbox full): after a few, the address is marked unreachable.
CREATE TABLE address_failures (
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_kind TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    last_at      TEXT NOT NULL,
    PRIMARY KEY (customer_id, channel_kind)
);

-- The failures "Retry failed" must leave for later, for the results page's note.
CREATE INDEX deliveries_held ON deliveries(broadcast_id) WHERE retry_not_before IS NOT NULL;

-- What the provider's status reports said besides the state: WhatsApp's pricing (its
-- conversation category, and whether it is billable) and the errors[] of a failure.
ALTER TABLE deliveries ADD COLUMN pricing_category TEXT;
ALTER TABLE deliveries ADD COLUMN billable BOOLEAN;
ALTER TABLE deliveries ADD COLUMN provider_errors TEXT;
