-- The customers list: ordered by name (keyset on name, id) and searchable by any substring of
-- name, phone or email through an FTS5 trigram index kept in step by triggers.
CREATE INDEX customers_name_id ON customers(name, id);

CREATE VIRTUAL TABLE customers_fts USING fts5(
    name, phone, email, content = 'customers', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO customers_fts (rowid, name, phone, email) SELECT id, name, phone, email FROM customers;

CREATE TRIGGER customers_fts_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customers_fts (rowid, name, phone, email) VALUES (new.id, new.name, new.phone, new.email);
END;
CREATE TRIGGER customers_fts_delete AFTER DELETE ON customers BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, name, phone, email)
    VALUES ('delete', old.id, old.name, old.phone, old.email);
END;
CREATE TRIGGER customers_fts_update AFTER UPDATE OF name, phone, email ON customers BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, name, phone, email)
    VALUES ('delete', old.id, old.name, old.phone, old.email);
    INSERT INTO customers_fts (rowid, name, phone, email) VALUES (new.id, new.name, new.phone, new.email);
END;
