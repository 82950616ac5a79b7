-- Uploaded attachments. The file lives under <data-dir>/attachments/<id> (never in a served
-- folder); this row says what it is. broadcasts.attachments lists the ids a broadcast carries.
CREATE TABLE attachments (
    id          TEXT PRIMARY KEY,
    file_name   TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_by INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL
);
