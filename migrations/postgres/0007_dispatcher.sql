-- The dispatcher. A broadcast whose time passed by more than the grace period while Herald
-- was not running is not sent late: it is marked missed and waits for "send now".
ALTER TABLE broadcasts ADD COLUMN missed_at TIMESTAMPTZ;
-- Due schedules are found by status and time.
CREATE INDEX broadcasts_due ON broadcasts(status, scheduled_at);
