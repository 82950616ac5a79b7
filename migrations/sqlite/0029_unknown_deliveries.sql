-- How many of a broadcast's deliveries are 'unknown' (their request may have reached a
-- provider that cannot tell): counted apart from the failed ones. The state itself is let
-- through deliveries' CHECK by `db::upgrade::widen_delivery_states` after the migrations: a
-- CHECK cannot be changed by ALTER TABLE, and rebuilding the table inside sqlx's migration
-- transaction would cascade into the messages that name their delivery.
ALTER TABLE broadcasts ADD COLUMN unknown_count INTEGER NOT NULL DEFAULT 0;
