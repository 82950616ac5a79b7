-- Substring search over broadcast names and texts without scanning the table: an FTS5 index
-- with the trigram tokenizer (case-insensitive; a quoted phrase matches any substring of three
-- or more characters). Kept in step with `broadcasts` by triggers.
CREATE VIRTUAL TABLE broadcasts_fts USING fts5(
    name, body, content = 'broadcasts', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO broadcasts_fts (rowid, name, body) SELECT id, name, body FROM broadcasts;

CREATE TRIGGER broadcasts_fts_insert AFTER INSERT ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (rowid, name, body) VALUES (new.id, new.name, new.body);
END;
CREATE TRIGGER broadcasts_fts_delete AFTER DELETE ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (broadcasts_fts, rowid, name, body)
    VALUES ('delete', old.id, old.name, old.body);
END;
CREATE TRIGGER broadcasts_fts_update AFTER UPDATE OF name, body ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (broadcasts_fts, rowid, name, body)
    VALUES ('delete', old.id, old.name, old.body);
    INSERT INTO broadcasts_fts (rowid, name, body) VALUES (new.id, new.name, new.body);
END;
