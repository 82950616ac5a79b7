-- Approval before sending (issue 27): a broadcast a workspace rule says needs an admin's
-- look is 'pending' once staff submit it, then 'approved' or 'rejected' with the admin's
-- comment. The approved content's fingerprint is kept: an edit that changes it voids the
-- approval. NULL: nobody asked.
ALTER TABLE broadcasts ADD COLUMN approval TEXT CHECK (approval IN ('pending', 'approved', 'rejected'));
ALTER TABLE broadcasts ADD COLUMN approval_note TEXT;
ALTER TABLE broadcasts ADD COLUMN approval_by BIGINT REFERENCES staff_users(id) ON DELETE SET NULL;
ALTER TABLE broadcasts ADD COLUMN approval_at TIMESTAMPTZ;
ALTER TABLE broadcasts ADD COLUMN approval_hash TEXT;

-- What Twilio billed for each SMS, read from its message resource once known (its status
-- callbacks carry no price): millionths of `provider_price_unit`. `price_reads` counts the
-- reads that found no price yet; after a few, Herald stops asking.
ALTER TABLE deliveries ADD COLUMN provider_price_micros BIGINT;
ALTER TABLE deliveries ADD COLUMN provider_price_unit TEXT;
ALTER TABLE deliveries ADD COLUMN price_reads INTEGER NOT NULL DEFAULT 0;
-- The Twilio messages (sids start SM or MM) whose price is still to be read.
CREATE INDEX deliveries_unpriced ON deliveries(id)
    WHERE provider_price_micros IS NULL AND price_reads < 5 AND provider_message_id LIKE 'SM%';
