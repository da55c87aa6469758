-- The settle of a batch of holds (gateway/storage/holds.py) becomes a function. As a statement
-- of its own it was planned again at almost every call: its plan depends on how many holds the
-- batch has, so PostgreSQL kept choosing a plan made for each call's numbers, which took
-- longer to make (0.25-0.5 ms) than the statement took to run. A PL/pgSQL function keeps one
-- plan for the session, made for any batch (plan_cache_mode below): the batch's holds and tasks
-- are looked up by their keys whatever their number. Same arguments, same answers: the ids of
-- the holds settled now.
--
-- Each hold is settled at most once (its status is compared and set), so a hold resolved
-- meanwhile is simply not in the answer. Nor is one whose task has ended meanwhile (cancelled,
-- timed out): its task row is locked and checked first. That check names the statuses a live
-- task is not: named as the ones it is, the statement would match the partial indexes of open
-- tasks, and on a big table, whose statistics count few open tasks, the planner would scan all
-- of them instead of looking the batch's tasks up by id.
CREATE FUNCTION settle_holds(
    p_hold_ids BIGINT[], p_statuses TEXT[], p_channel_ids BIGINT[], p_upstream_task_ids TEXT[],
    p_descriptions TEXT[], p_properties JSONB[], p_prompts_en TEXT[], p_prompt_urls SMALLINT[]
) RETURNS SETOF BIGINT
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN QUERY
    WITH s AS (
        SELECT * FROM unnest(p_hold_ids, p_statuses, p_channel_ids, p_upstream_task_ids,
                             p_descriptions, p_properties, p_prompts_en, p_prompt_urls)
            AS s (hold_id, status, channel_id, upstream_task_id, description, properties,
                  prompt_en, prompt_urls)
    ), live AS (
        SELECT t.id FROM tasks t JOIN holds ON holds.task_id = t.id JOIN s ON s.hold_id = holds.id
        WHERE t.status NOT IN ('REJECTED', 'NOT_START', 'SUBMITTED', 'IN_PROGRESS', 'SUCCESS',
                               'FAILURE', 'CANCEL')  -- SUBMITTING or MODAL
        FOR UPDATE OF t
    ), h AS (
        UPDATE holds SET status = 'SETTLED', resolved_at = now()
        FROM s WHERE holds.id = s.hold_id AND holds.status = 'OPEN'
          AND holds.task_id IN (SELECT id FROM live)
        RETURNING holds.id, holds.task_id, holds.user_id, holds.api_key_id
    ), t AS (
        UPDATE tasks SET status = s.status, channel_id = s.channel_id,
                         upstream_task_id = s.upstream_task_id,
                         description = coalesce(s.description, tasks.description),
                         properties = tasks.properties || s.properties,
                         prompt_en = coalesce(tasks.prompt_en, s.prompt_en),
                         prompt_urls = coalesce(s.prompt_urls, tasks.prompt_urls),
                         progress = CASE WHEN s.status = 'SUCCESS' THEN '100%' ELSE progress END,
                         finish_time_ms = CASE WHEN s.status = 'SUCCESS'
                             THEN (extract(epoch FROM now()) * 1000)::BIGINT END,
                         updated_at = now()
        FROM h JOIN s ON s.hold_id = h.id
        WHERE tasks.id = h.task_id
    ), l AS (
        INSERT INTO ledger (user_id, api_key_id, task_id, kind, amount_units, source)
        SELECT user_id, api_key_id, task_id, 'SETTLE', 0, 'hold:' || id FROM h
    )
    SELECT id FROM h;
END
$$;
