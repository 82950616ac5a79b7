-- Whether any customer withdrew anything is asked each time a broadcast fires: answered from
-- this index alone, however many opt-ins there are.
CREATE INDEX customer_consents_withdrawn ON customer_consents(customer_id) WHERE NOT granted;
