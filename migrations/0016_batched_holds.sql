-- Holds of new tasks written many at a time: the submits that arrive while one batch is being
-- written go together into the next (gateway/billing/batches.py), as one statement and one
-- commit, and each user's balance row (and each limited key's) is written once per batch
-- instead of once per hold.
--
-- hold_new_tasks answers one row per element, in the order given: (task_id, hold_id, NULL)
-- when held, (NULL, NULL, 'user_balance' or 'key_limit') when refused, exactly as
-- hold_new_task (0002) would have answered for each in turn. A refused element writes nothing.
-- Holds with a cap on open tasks (hold_new_capped_task, 0007) are not batched.
--
-- Each balance and key limit is read under its row lock and debited once for the batch, by the
-- sum of what the batch's granted holds take from it (the rows' checks keep them at or above
-- zero). Locks: for each user of the batch in ascending id, its limited keys of the batch in
-- ascending id, then its own row, all held to the commit. A single hold, a release and a
-- refund lock a key before its user too, so no two of them wait on each other in a cycle.
CREATE FUNCTION hold_new_tasks(
    p_user_ids BIGINT[], p_key_ids BIGINT[], p_amounts BIGINT[], p_deadline_s DOUBLE PRECISION,
    p_parent_ids BIGINT[], p_actions TEXT[], p_price_actions TEXT[], p_modes TEXT[],
    p_bot_types TEXT[], p_prompts TEXT[], p_states TEXT[], p_notify_hooks TEXT[],
    p_submit_times_ms BIGINT[]
) RETURNS TABLE (task_id BIGINT, hold_id BIGINT, refused TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n CONSTANT INTEGER := coalesce(cardinality(p_user_ids), 0);
    v_task_ids BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    v_hold_ids BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    v_refused TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    v_key_limited BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
    v_user BIGINT;
    v_balance BIGINT;   -- what the user has left; NULL when disabled or unknown
    v_spent BIGINT;
    v_keys BIGINT[];    -- the user's limited keys in this batch, what each had, and has left
    v_had BIGINT[];
    v_left BIGINT[];
    v_spent_keys BIGINT;
    i INTEGER;
    k INTEGER;
BEGIN
    FOR v_user IN SELECT DISTINCT u FROM unnest(p_user_ids) u ORDER BY u LOOP
        SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(quota_remaining_units), '{}')
        INTO v_keys, v_left
        FROM (SELECT id, quota_remaining_units FROM api_keys
              WHERE id IN (SELECT p_key_ids[o] FROM generate_subscripts(p_user_ids, 1) o
                           WHERE p_user_ids[o] = v_user)
                AND quota_remaining_units IS NOT NULL
              ORDER BY id FOR UPDATE) limited;
        v_had := v_left;
        SELECT CASE WHEN enabled THEN balance_units END INTO v_balance
        FROM users WHERE id = v_user FOR UPDATE;
        v_spent := 0;
        v_spent_keys := 0;
        FOR i IN SELECT o FROM generate_subscripts(p_user_ids, 1) o
                 WHERE p_user_ids[o] = v_user ORDER BY o LOOP
            k := array_position(v_keys, p_key_ids[i]);
            IF k IS NOT NULL AND v_left[k] < p_amounts[i] THEN
                v_refused[i] := 'key_limit';
            ELSIF v_balance IS NULL OR v_balance - v_spent < p_amounts[i] THEN
                v_refused[i] := 'user_balance';
            ELSE
                v_spent := v_spent + p_amounts[i];
                IF k IS NOT NULL THEN
                    v_left[k] := v_left[k] - p_amounts[i];
                    v_spent_keys := v_spent_keys + p_amounts[i];
                    v_key_limited[i] := TRUE;
                END IF;
                v_task_ids[i] := next_task_id();
                v_hold_ids[i] := nextval('holds_id_seq');
            END IF;
        END LOOP;
        IF v_spent_keys > 0 THEN
            UPDATE api_keys SET quota_remaining_units = quota_remaining_units - l.spent
            FROM (SELECT id, had - left_units AS spent
                  FROM unnest(v_keys, v_had, v_left) AS k (id, had, left_units)) l
            WHERE api_keys.id = l.id AND l.spent > 0;
        END IF;
        IF v_spent > 0 THEN
            UPDATE users SET balance_units = balance_units - v_spent, updated_at = now()
            WHERE id = v_user;
        END IF;
    END LOOP;

    INSERT INTO tasks (id, user_id, api_key_id, parent_id, action, price_action, mode, bot_type,
                       price_units, status, prompt, state, notify_hook, submit_time_ms)
    SELECT v_task_ids[o], p_user_ids[o], p_key_ids[o], p_parent_ids[o], p_actions[o],
           p_price_actions[o], p_modes[o], p_bot_types[o], p_amounts[o], 'SUBMITTING',
           p_prompts[o], p_states[o], p_notify_hooks[o], p_submit_times_ms[o]
    FROM generate_subscripts(p_user_ids, 1) o WHERE v_task_ids[o] IS NOT NULL;
    INSERT INTO holds (id, task_id, user_id, api_key_id, amount_units, key_limited, deadline)
    OVERRIDING SYSTEM VALUE
    SELECT v_hold_ids[o], v_task_ids[o], p_user_ids[o], p_key_ids[o], p_amounts[o],
           v_key_limited[o], now() + make_interval(secs => p_deadline_s)
    FROM generate_subscripts(p_user_ids, 1) o WHERE v_task_ids[o] IS NOT NULL;
    INSERT INTO ledger (user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source)
    SELECT p_user_ids[o], p_key_ids[o], v_task_ids[o], 'HOLD', -p_amounts[o],
           CASE WHEN v_key_limited[o] THEN -p_amounts[o] ELSE 0 END, 'hold:' || v_hold_ids[o]
    FROM generate_subscripts(p_user_ids, 1) o WHERE v_task_ids[o] IS NOT NULL;

    RETURN QUERY SELECT v_task_ids[o], v_hold_ids[o], v_refused[o]
                 FROM generate_subscripts(p_user_ids, 1) o ORDER BY o;
END
$$;
