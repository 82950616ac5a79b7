-- Failed sign-ins, counted where every instance sees them: per account (by a hash of the
-- normalised email), per client address (IPv6 by /64) and per pair of the two. A row holds one
-- fixed window (from its first failure) and is swept once the window has passed.
CREATE TABLE sign_in_failures (
    scope        TEXT NOT NULL CHECK (scope IN ('account', 'address', 'pair')),
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- The accounts `--demo` made: a start without `--demo` deactivates them.
ALTER TABLE staff_users ADD COLUMN demo INTEGER NOT NULL DEFAULT 0;
UPDATE staff_users SET demo = 1
    WHERE email IN ('admin@herald.test', 'staff@herald.test', 'manager@herald.test');
