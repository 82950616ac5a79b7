-- Herald schema, SQLite dialect. Times are UTC, written by sqlx from chrono (RFC 3339 text,
-- microsecond precision), so text order is time order. Keep in step with migrations/postgres.

CREATE TABLE staff_users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'admin', 'manager')),
    password_hash TEXT NOT NULL,
    time_zone     TEXT NOT NULL DEFAULT 'UTC',
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE customers (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    phone            TEXT,
    email            TEXT,
    whatsapp_id      TEXT,
    telegram_chat_id TEXT,
    assignee_id      INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    time_zone        TEXT NOT NULL DEFAULT 'UTC',
    opted_out        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX customers_phone ON customers(phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX customers_email ON customers(email) WHERE email IS NOT NULL;
CREATE INDEX customers_name ON customers(name);

CREATE TABLE tags (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE customer_tags (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag_id      INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, tag_id)
);
CREATE INDEX customer_tags_tag ON customer_tags(tag_id, customer_id);

CREATE TABLE robot_groups (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE customer_robot_groups (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL REFERENCES robot_groups(id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, group_id)
);
CREATE INDEX customer_robot_groups_group ON customer_robot_groups(group_id, customer_id);

CREATE TABLE channels (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('sandbox', 'whatsapp', 'telegram', 'email', 'sms', 'webhook')),
    name         TEXT NOT NULL UNIQUE,
    -- Credentials and settings as JSON; never sent to the browser.
    config       TEXT NOT NULL DEFAULT '{}',
    enabled      INTEGER NOT NULL DEFAULT 1,
    rate_per_sec INTEGER NOT NULL DEFAULT 50,
    created_at   TEXT NOT NULL
);

CREATE TABLE broadcasts (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    body            TEXT NOT NULL DEFAULT '',
    attachments     TEXT NOT NULL DEFAULT '[]',
    audience        TEXT NOT NULL DEFAULT '{"match":"all","conditions":[]}',
    channel_ids     TEXT NOT NULL DEFAULT '[]',
    scheduled_at    TEXT,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
    paused          INTEGER NOT NULL DEFAULT 0,
    created_by      INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    copied_from     INTEGER REFERENCES broadcasts(id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    -- Counters kept in step with deliveries, so the list and results never count rows.
    audience_total  INTEGER NOT NULL DEFAULT 0,
    sent_count      INTEGER NOT NULL DEFAULT 0,
    delivered_count INTEGER NOT NULL DEFAULT 0,
    read_count      INTEGER NOT NULL DEFAULT 0,
    replied_count   INTEGER NOT NULL DEFAULT 0,
    failed_count    INTEGER NOT NULL DEFAULT 0,
    -- Sort keys, derived so that every list order is one index walk (same formula as
    -- BroadcastStatus::rank in src/model/broadcast.rs).
    status_rank     INTEGER GENERATED ALWAYS AS (
        CASE
            WHEN paused = 1 AND status IN ('scheduled', 'sending') THEN 2
            WHEN status = 'sending' THEN 0
            WHEN status = 'scheduled' THEN 1
            WHEN status = 'sent' THEN 3
            WHEN status = 'failed' THEN 4
            WHEN status = 'cancelled' THEN 5
            ELSE 6
        END) STORED,
    send_sort       TEXT GENERATED ALWAYS AS (COALESCE(started_at, scheduled_at, created_at)) STORED
);
CREATE INDEX broadcasts_by_status ON broadcasts(status_rank, send_sort, id);
CREATE INDEX broadcasts_by_created ON broadcasts(created_at, id);
CREATE INDEX broadcasts_by_send ON broadcasts(send_sort, id);

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY,
    broadcast_id        INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    customer_id         INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_id          INTEGER NOT NULL REFERENCES channels(id),
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sending', 'sent', 'delivered', 'read', 'failed')),
    provider_message_id TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    claimed_until       TEXT,
    next_attempt_at     TEXT,
    created_at          TEXT NOT NULL,
    sent_at             TEXT,
    delivered_at        TEXT,
    read_at             TEXT,
    replied_at          TEXT,
    failed_at           TEXT,
    UNIQUE (broadcast_id, customer_id)
);
CREATE INDEX deliveries_pending ON deliveries(broadcast_id, state, id);
CREATE INDEX deliveries_provider ON deliveries(channel_id, provider_message_id);

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,
    customer_id         INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_id          INTEGER REFERENCES channels(id),
    direction           TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    body                TEXT NOT NULL,
    provider_message_id TEXT,
    broadcast_id        INTEGER REFERENCES broadcasts(id) ON DELETE SET NULL,
    delivery_id         INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
    staff_user_id       INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    created_at          TEXT NOT NULL
);
CREATE INDEX messages_customer ON messages(customer_id, created_at);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor_id     INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    action       TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id   INTEGER,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_subject ON audit_log(subject_type, subject_id);
