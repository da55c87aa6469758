-- Optional rate limits of a user across all of their keys, beside each key's own (0001):
-- requests a minute (counted in Redis by gateway/auth/limits.py) and tasks open at once
-- (counted here, when a task is held).
ALTER TABLE users
    ADD COLUMN requests_per_minute INTEGER CHECK (requests_per_minute > 0),
    ADD COLUMN max_open_tasks      INTEGER CHECK (max_open_tasks > 0);

-- The open tasks of one key, or of every key of one user; both read tasks_key_open_idx, so the
-- user's count needs no index of its own that every task write would pay for.
CREATE FUNCTION open_tasks_of_key(p_key_id BIGINT) RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM tasks
    WHERE api_key_id = p_key_id
      AND status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')
$$;

CREATE FUNCTION open_tasks_of_user(p_user_id BIGINT) RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM tasks
    WHERE api_key_id IN (SELECT id FROM api_keys WHERE user_id = p_user_id)
      AND status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')
$$;

-- hold_new_task (0002) for a caller with a cap on open tasks: p_key_max_open for the key,
-- p_user_max_open for its user, NULL where there is none. Each cap is checked under a
-- transaction-level advisory lock on its key or user (the key's first, then the user's, always
-- in that order), held until the hold commits: capped holds of one key or user are counted and
-- inserted one at a time, so N concurrent holds against a cap of K make exactly K tasks. The
-- locks end with the transaction, so nothing is left to leak when a process dies, and a task
-- frees its slot by the very update that ends it. ``refused`` is 'key_open_tasks' or
-- 'user_open_tasks' when a cap is reached; nothing is written then. A caller already at a cap
-- is refused before any lock (right at that instant), so a burst past the cap does not queue
-- on the lock holding a connection each.
CREATE FUNCTION hold_new_capped_task(
    p_key_max_open INTEGER, p_user_max_open INTEGER,
    p_user_id BIGINT, p_key_id BIGINT, p_amount BIGINT, p_deadline_s DOUBLE PRECISION,
    p_parent_id BIGINT, p_action TEXT, p_price_action TEXT, p_mode TEXT, p_bot_type TEXT,
    p_prompt TEXT, p_state TEXT, p_notify_hook TEXT, p_submit_time_ms BIGINT,
    OUT task_id BIGINT, OUT hold_id BIGINT, OUT refused TEXT
)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key_max_open IS NOT NULL AND open_tasks_of_key(p_key_id) >= p_key_max_open THEN
        refused := 'key_open_tasks';
        RETURN;
    END IF;
    IF p_user_max_open IS NOT NULL AND open_tasks_of_user(p_user_id) >= p_user_max_open THEN
        refused := 'user_open_tasks';
        RETURN;
    END IF;
    -- Lock spaces 'mjk' and 'mju' (keys, users); ids past 2^31 share a lock, which only
    -- serialises more.
    IF p_key_max_open IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1835690752, (p_key_id % 2147483648)::INTEGER);
        IF open_tasks_of_key(p_key_id) >= p_key_max_open THEN
            refused := 'key_open_tasks';
            RETURN;
        END IF;
    END IF;
    IF p_user_max_open IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1835693312, (p_user_id % 2147483648)::INTEGER);
        IF open_tasks_of_user(p_user_id) >= p_user_max_open THEN
            refused := 'user_open_tasks';
            RETURN;
        END IF;
    END IF;
    SELECT h.task_id, h.hold_id, h.refused INTO task_id, hold_id, refused
    FROM hold_new_task(p_user_id, p_key_id, p_amount, p_deadline_s, p_parent_id, p_action,
                       p_price_action, p_mode, p_bot_type, p_prompt, p_state, p_notify_hook,
                       p_submit_time_ms) h;
END
$$;
