-- An early report is removed by its id once applied, by whoever read it, perhaps a moment
-- after another instance of the same work already applied and removed it. SQLite reuses the
-- largest rowid once that row is gone, so such a late removal could take a report kept since
-- under the same id, never applied: a reply lost from the counters (about one in 2,000
-- replies that overtook the record of their send). AUTOINCREMENT never hands an id out twice.
-- (PostgreSQL's BIGSERIAL never does: nothing to change there.)
CREATE TABLE early_reports_new (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id          INTEGER NOT NULL,
    provider_message_id TEXT NOT NULL,
    event               TEXT NOT NULL,
    reason              TEXT,
    at                  TEXT NOT NULL,
    message_id          INTEGER
);
INSERT INTO early_reports_new (id, channel_id, provider_message_id, event, reason, at, message_id)
    SELECT id, channel_id, provider_message_id, event, reason, at, message_id FROM early_reports;
DROP TABLE early_reports;
ALTER TABLE early_reports_new RENAME TO early_reports;
CREATE INDEX early_reports_message ON early_reports(channel_id, provider_message_id);
