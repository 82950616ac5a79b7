-- Provider reports that arrived before Herald had recorded the message they are about (a
-- fast "delivered" can overtake the write of the provider's id). They are applied once the
-- id is recorded, and forgotten after a week if it never is (test sends, say).
CREATE TABLE early_reports (
    id                  INTEGER PRIMARY KEY,
    channel_id          INTEGER NOT NULL,
    provider_message_id TEXT NOT NULL,
    event               TEXT NOT NULL,
    reason              TEXT,
    at                  TEXT NOT NULL
);
CREATE INDEX early_reports_message ON early_reports(channel_id, provider_message_id);
