-- When staff last opened the customer's chat: later inbound messages are unread.
ALTER TABLE customers ADD COLUMN chat_seen_at TIMESTAMPTZ;
