-- The results page's timeline: per broadcast and minute (minutes since 1970, UTC), how many
-- messages went out, were delivered, read and answered; kept with the counters.
CREATE TABLE broadcast_timeline (
    broadcast_id    BIGINT NOT NULL,
    minute          BIGINT NOT NULL,
    sent_count      BIGINT NOT NULL DEFAULT 0,
    delivered_count BIGINT NOT NULL DEFAULT 0,
    read_count      BIGINT NOT NULL DEFAULT 0,
    replied_count   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (broadcast_id, minute)
);

INSERT INTO broadcast_timeline (broadcast_id, minute, sent_count, delivered_count, read_count, replied_count)
SELECT broadcast_id, minute, SUM(s), SUM(d), SUM(r), SUM(p) FROM (
    SELECT broadcast_id, FLOOR(EXTRACT(EPOCH FROM sent_at) / 60)::BIGINT AS minute, 1 AS s, 0 AS d, 0 AS r, 0 AS p FROM deliveries WHERE sent_at IS NOT NULL
    UNION ALL SELECT broadcast_id, FLOOR(EXTRACT(EPOCH FROM delivered_at) / 60)::BIGINT, 0, 1, 0, 0 FROM deliveries WHERE delivered_at IS NOT NULL AND state IN ('delivered', 'read')
    UNION ALL SELECT broadcast_id, FLOOR(EXTRACT(EPOCH FROM read_at) / 60)::BIGINT, 0, 0, 1, 0 FROM deliveries WHERE read_at IS NOT NULL AND state = 'read'
    UNION ALL SELECT broadcast_id, FLOOR(EXTRACT(EPOCH FROM replied_at) / 60)::BIGINT, 0, 0, 0, 1 FROM deliveries WHERE replied_at IS NOT NULL
) t GROUP BY broadcast_id, minute;
