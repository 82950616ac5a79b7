-- A message in several provider requests (a text, then each file): the parts accepted so far,
-- as JSON [[part, provider id], …], so a retry sends only the parts not yet accepted.
ALTER TABLE deliveries ADD COLUMN parts_sent TEXT;
