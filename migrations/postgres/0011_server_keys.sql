-- Keys the server generates once and every instance shares (they sign links in outgoing
-- messages, such as the unsubscribe link in emails).
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
