-- The customers list: ordered by name (keyset on name, id) and searchable by any substring of
-- name, phone or email through trigram GIN indexes.
CREATE INDEX customers_name_id ON customers(name, id);
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);
CREATE INDEX customers_phone_trgm ON customers USING gin (phone gin_trgm_ops);
CREATE INDEX customers_email_trgm ON customers USING gin (email gin_trgm_ops);
