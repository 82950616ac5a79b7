-- Substring search over broadcast names and texts without scanning the table: trigram GIN
-- indexes serve `ILIKE '%…%'` (pg_trgm ships with PostgreSQL and is a trusted extension).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX broadcasts_name_trgm ON broadcasts USING gin (name gin_trgm_ops);
CREATE INDEX broadcasts_body_trgm ON broadcasts USING gin (body gin_trgm_ops);
