-- Retargeting by outcome (issue 28): a follow-up's audience is a frozen set of an earlier
-- broadcast's recipients, taken in one INSERT … SELECT when the follow-up is made.
CREATE TABLE audience_sets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    outcome      TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);
CREATE TABLE audience_set_members (
    set_id      INTEGER NOT NULL REFERENCES audience_sets(id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    PRIMARY KEY (set_id, customer_id)
);
ALTER TABLE broadcasts ADD COLUMN follow_up_of INTEGER REFERENCES broadcasts(id) ON DELETE SET NULL;
CREATE INDEX broadcasts_follow_ups ON broadcasts(follow_up_of) WHERE follow_up_of IS NOT NULL;
