-- When the provider last verified the channel's webhook (WhatsApp's verify-token handshake),
-- for the channels page.
ALTER TABLE channels ADD COLUMN webhook_verified_at TEXT;
