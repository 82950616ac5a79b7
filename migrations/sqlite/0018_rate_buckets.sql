-- Each channel's send rate as one token bucket that every Herald instance takes from, so that
-- several instances on one database together stay within the channel's rate. Tokens refill at
-- the channel's rate per second up to a small capacity; `refilled_us` is when they were last
-- counted (microseconds since 1970).
CREATE TABLE channel_rate_buckets (
    channel_id  INTEGER PRIMARY KEY,
    tokens      REAL NOT NULL,
    refilled_us INTEGER NOT NULL
);
