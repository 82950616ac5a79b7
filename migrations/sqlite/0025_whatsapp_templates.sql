-- A WhatsApp channel's message templates, as its business account lists them (synced on
-- connect, on demand, hourly and from the template status webhook).
CREATE TABLE whatsapp_templates (
    channel_id       INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    language         TEXT NOT NULL,
    category         TEXT NOT NULL,
    status           TEXT NOT NULL,
    quality          TEXT NOT NULL,
    parameter_format TEXT NOT NULL,
    components       TEXT NOT NULL,
    synced_at        TEXT NOT NULL,
    PRIMARY KEY (channel_id, name, language)
);
