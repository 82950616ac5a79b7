-- When the provider request of a delivery's current claim started. A claim whose worker died
-- after that point may have reached the provider: the delivery is uncertain, not pending, and
-- is sent again only if no report named it within the reconciliation window.
ALTER TABLE deliveries ADD COLUMN started_at TIMESTAMPTZ;
-- Whether this claim took over an uncertain delivery (its send is a resend after a crash).
ALTER TABLE deliveries ADD COLUMN uncertain BOOLEAN NOT NULL DEFAULT FALSE;
-- Deliveries sent again after a crash left them uncertain, for the results.
ALTER TABLE broadcasts ADD COLUMN resent_count BIGINT NOT NULL DEFAULT 0;
