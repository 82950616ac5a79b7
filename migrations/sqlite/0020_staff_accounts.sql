-- Staff accounts managed by admins: an account is deactivated (it keeps its broadcasts and
-- its audit history; its sessions end), and a password is set through a one-time token (an
-- invitation or a reset), of which only the hash is kept.
ALTER TABLE staff_users ADD COLUMN deactivated_at TEXT;

CREATE TABLE password_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX password_tokens_user ON password_tokens(user_id);

-- Sessions end after a while without use, as well as at their absolute expiry.
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
