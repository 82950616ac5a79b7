-- Uploaded attachments. The file lives under <data-dir>/attachments/<id> (never in a served
-- folder); this row says what it is. broadcasts.attachments lists the ids a broadcast carries.
CREATE TABLE attachments (
    id          TEXT PRIMARY KEY,
    file_name   TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_by BIGINT REFERENCES staff_users(id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
