-- Opt-outs per channel kind: a customer who texts STOP on SMS gets no more SMS broadcasts.
-- (customers.opted_out, set by staff or by an import, stops every channel.)
CREATE TABLE customer_opt_outs (
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel_kind TEXT NOT NULL,
    at           TEXT NOT NULL,
    -- The message that asked, if it came by message.
    message_id   INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    PRIMARY KEY (customer_id, channel_kind)
);
