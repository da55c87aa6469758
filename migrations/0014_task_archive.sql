-- Ended tasks can be moved out of the tasks table once old (GATEWAY_RELAY__ARCHIVE_TASKS_AFTER_DAYS)
-- into tasks_archive: the same columns, in the same order, and no index but its key, so that the
-- table every request reads stays the size of the recent past. A column added to tasks must be
-- added to tasks_archive too (a test compares them).
CREATE TABLE tasks_archive (LIKE tasks);
ALTER TABLE tasks_archive ADD PRIMARY KEY (id);

-- The ledger is kept whole and still names every task it moved money for, wherever the task is
-- kept; so is a follow-up's parent, which may be archived before it.
ALTER TABLE ledger DROP CONSTRAINT ledger_task_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_parent_id_fkey;

-- What the money queries (usage, reconciliation) read of every task, archived or not.
CREATE VIEW task_records AS
    SELECT id, user_id, api_key_id, status, price_action, price_units FROM tasks
    UNION ALL
    SELECT id, user_id, api_key_id, status, price_action, price_units FROM tasks_archive;
