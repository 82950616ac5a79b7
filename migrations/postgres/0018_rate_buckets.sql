-- Each channel's send rate as one token bucket that every Herald instance takes from, so that
-- several instances on one database together stay within the channel's rate. Tokens refill at
-- the channel's rate per second up to a small capacity; `refilled_us` is when they were last
-- counted (microseconds since 1970, the database server's clock).
CREATE TABLE channel_rate_buckets (
    channel_id  BIGINT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_us BIGINT NOT NULL
);
