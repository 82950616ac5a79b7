-- Consent, per customer, kind of channel and purpose: the latest word (given or withdrawn),
-- when and how (an import, a staff edit with its note, an inbound message, the preference
-- form). Every change is also kept in consent_changes, oldest first.
CREATE TABLE customer_consents (
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_kind TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('marketing', 'service')),
    granted      INTEGER NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('import', 'staff', 'inbound', 'form')),
    note         TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (customer_id, channel_kind, purpose)
);
CREATE TABLE consent_changes (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_kind TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    granted      INTEGER NOT NULL,
    source       TEXT NOT NULL,
    note         TEXT,
    actor_id     INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    at           TEXT NOT NULL
);
CREATE INDEX consent_changes_by_customer ON consent_changes(customer_id, id);

-- A broadcast's purpose: marketing (consent rules and the frequency cap apply) or service.
ALTER TABLE broadcasts ADD COLUMN purpose TEXT NOT NULL DEFAULT 'marketing'
    CHECK (purpose IN ('marketing', 'service'));

-- Who a broadcast left out when it fired, and why: no opt-in where one is required, or over
-- the frequency cap.
CREATE TABLE broadcast_left_out (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    reason       TEXT NOT NULL CHECK (reason IN ('consent', 'frequency cap')),
    PRIMARY KEY (broadcast_id, customer_id)
);
