-- Audiences name tags and robot groups by id, and a label may be deleted once no unfinished
-- broadcast names it. SQLite hands the largest rowid out again once its row is gone, so a
-- finished broadcast (or a copy of it), a stale wizard page or a stale delete form could name
-- a label created since under the same id. AUTOINCREMENT never hands an id out twice
-- (PostgreSQL's BIGSERIAL never does).
--
-- The tables are rebuilt inside the migration's transaction, where foreign keys stay on:
-- dropping a label table while its links refer to it would cascade into them. So the links
-- are rebuilt first, referring to the new table, and the old links, then the old labels, are
-- dropped when nothing refers to them any more; renaming the new label table renames the
-- links' references with it.
CREATE TABLE tags_new (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO tags_new (id, name) SELECT id, name FROM tags;
CREATE TABLE customer_tags_new (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag_id      INTEGER NOT NULL REFERENCES tags_new(id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, tag_id)
);
INSERT INTO customer_tags_new (customer_id, tag_id) SELECT customer_id, tag_id FROM customer_tags;
DROP TABLE customer_tags;
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags;
ALTER TABLE customer_tags_new RENAME TO customer_tags;
CREATE INDEX customer_tags_tag ON customer_tags(tag_id, customer_id);

CREATE TABLE robot_groups_new (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO robot_groups_new (id, name) SELECT id, name FROM robot_groups;
CREATE TABLE customer_robot_groups_new (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL REFERENCES robot_groups_new(id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, group_id)
);
INSERT INTO customer_robot_groups_new (customer_id, group_id)
    SELECT customer_id, group_id FROM customer_robot_groups;
DROP TABLE customer_robot_groups;
DROP TABLE robot_groups;
ALTER TABLE robot_groups_new RENAME TO robot_groups;
ALTER TABLE customer_robot_groups_new RENAME TO customer_robot_groups;
CREATE INDEX customer_robot_groups_group ON customer_robot_groups(group_id, customer_id);
