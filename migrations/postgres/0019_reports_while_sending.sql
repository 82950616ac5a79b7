-- A reply that quotes a message Herald has not recorded yet (the customer answered before the
-- send's record was written) is kept like an early status report, naming the stored message,
-- and marks its delivery replied once the send is recorded.
ALTER TABLE early_reports ADD COLUMN message_id BIGINT;

-- A provider repeats a webhook when unsure it arrived, sometimes at the same moment: an
-- inbound message is stored once per provider id, whichever request comes first.
DELETE FROM messages WHERE direction = 'in' AND provider_message_id IS NOT NULL
    AND id NOT IN (SELECT MIN(id) FROM messages WHERE direction = 'in'
                   AND provider_message_id IS NOT NULL GROUP BY channel_id, provider_message_id);
CREATE UNIQUE INDEX messages_inbound_once ON messages(channel_id, provider_message_id)
    WHERE direction = 'in' AND provider_message_id IS NOT NULL;

-- Inbound messages find their customer by the provider's address: without these, every
-- WhatsApp or Telegram message read the whole customers table.
CREATE INDEX customers_whatsapp ON customers(whatsapp_id) WHERE whatsapp_id IS NOT NULL;
CREATE INDEX customers_telegram ON customers(telegram_chat_id) WHERE telegram_chat_id IS NOT NULL;
