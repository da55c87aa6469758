-- A place under a channel's in-flight cap (gateway/storage/slots.py), taken in one call.
--
-- task_in_flight: a task in flight on its channel_id, as the cap counts it: tasks the channel
-- took that have not ended, submits being sent to it now (SUBMITTING with the channel's mark),
-- and MODAL tasks whose confirmation is being sent (an open hold).
CREATE FUNCTION task_in_flight(t tasks) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT t.channel_id IS NOT NULL
        AND (t.status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'IN_PROGRESS')
             OR (t.status = 'MODAL'
                 AND EXISTS (SELECT FROM holds h WHERE h.task_id = t.id AND h.status = 'OPEN')))
$$;

-- take_slot: 'taken' when fewer than p_cap other tasks are in flight on the channel and the
-- task, still SUBMITTING, was marked as the channel's (or is MODAL with an open hold, and so
-- already is); 'full' at the cap; 'ended' when the task is neither (resolved meanwhile). Takers
-- of one channel queue on the transaction-level advisory lock p_lock; each statement after it
-- reads a snapshot taken once the lock is held (READ COMMITTED, a VOLATILE function), so it
-- sees the previous taker's mark and the cap holds exactly across replicas.
CREATE FUNCTION take_slot(p_lock BIGINT, p_task_id BIGINT, p_channel_id BIGINT, p_cap INTEGER)
RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_others BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT count(*) INTO v_others FROM (
        SELECT FROM tasks t
        WHERE t.channel_id = p_channel_id AND t.id <> p_task_id AND task_in_flight(t)
        LIMIT p_cap
    ) AS s;
    IF v_others >= p_cap THEN
        RETURN 'full';
    END IF;
    UPDATE tasks SET channel_id = p_channel_id WHERE id = p_task_id AND status = 'SUBMITTING';
    IF FOUND THEN
        RETURN 'taken';
    END IF;
    IF EXISTS (
        SELECT FROM tasks t JOIN holds h ON h.task_id = t.id
        WHERE t.id = p_task_id AND t.status = 'MODAL' AND t.channel_id = p_channel_id
          AND h.status = 'OPEN'
    ) THEN
        RETURN 'taken';
    END IF;
    RETURN 'ended';
END
$$;
