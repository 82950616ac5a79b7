-- The wizard's save carries a key made when the wizard opened: a double-clicked or retried save
-- finds the broadcast it already created instead of creating a second one.
ALTER TABLE broadcasts ADD COLUMN client_key TEXT;
CREATE UNIQUE INDEX broadcasts_client_key ON broadcasts(client_key) WHERE client_key IS NOT NULL;
