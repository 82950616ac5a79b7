-- The results counters per channel of a broadcast (the broadcasts row keeps the totals),
-- maintained in the same transactions as the deliveries they count.
CREATE TABLE broadcast_channel_counts (
    broadcast_id    INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    audience_total  INTEGER NOT NULL DEFAULT 0,
    sent_count      INTEGER NOT NULL DEFAULT 0,
    delivered_count INTEGER NOT NULL DEFAULT 0,
    read_count      INTEGER NOT NULL DEFAULT 0,
    replied_count   INTEGER NOT NULL DEFAULT 0,
    failed_count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (broadcast_id, channel_id)
);

-- Broadcasts already sent or sending start from a recount.
INSERT INTO broadcast_channel_counts
    (broadcast_id, channel_id, audience_total, sent_count, delivered_count, read_count, replied_count, failed_count)
SELECT broadcast_id, channel_id, COUNT(*),
       SUM(CASE WHEN state IN ('sent', 'delivered', 'read') THEN 1 ELSE 0 END),
       SUM(CASE WHEN state IN ('delivered', 'read') THEN 1 ELSE 0 END),
       SUM(CASE WHEN state = 'read' THEN 1 ELSE 0 END),
       SUM(CASE WHEN replied_at IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)
FROM deliveries GROUP BY broadcast_id, channel_id;
