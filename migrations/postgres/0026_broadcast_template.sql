-- The approved WhatsApp template a broadcast sends (JSON: name, language, how each parameter
-- is filled, whether customers inside their 24-hour window get the free text instead).
ALTER TABLE broadcasts ADD COLUMN template TEXT;
