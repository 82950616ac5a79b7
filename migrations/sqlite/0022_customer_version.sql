-- A customer's version: every change to what the edit form shows (its fields, tags, robot
-- groups, assignee) adds one, so a save made from an older form is refused instead of
-- silently undoing what an import or a colleague changed meanwhile.
ALTER TABLE customers ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
