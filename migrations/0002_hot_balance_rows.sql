-- One user's (or one key's) concurrent submits must not queue on its row.
--
-- 1. Rows that every submit writes (tasks, holds, ledger) no longer carry foreign keys to users
--    and api_keys: each such check locked the user's and the key's row (FOR KEY SHARE), which
--    made every concurrent hold of one user share multixacts with, and wait behind, the others'
--    balance updates. Users and keys are never deleted (they are disabled or revoked), and a
--    trigger now refuses a delete, so the ids those rows carry always name a row.
-- 2. Holds become functions that write the task, the hold and its ledger row first and debit
--    the user (and a limited key) last, so the balance row is locked only from its debit to the
--    commit.
--
-- Each function answers one row (task_id, hold_id, refused). ``refused`` is 'user_balance',
-- 'key_limit' or 'target' (the MODAL task is not awaiting a paid confirmation) when an unlocked
-- look shows the hold cannot be made; nothing is written then. When the look passed but the
-- debit fails (a concurrent hold took the money), refuse_hold() aborts the call and everything it
-- wrote, with the same word as the error's detail.

ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey, DROP CONSTRAINT tasks_api_key_id_fkey;
ALTER TABLE holds DROP CONSTRAINT holds_user_id_fkey, DROP CONSTRAINT holds_api_key_id_fkey;
ALTER TABLE ledger DROP CONSTRAINT ledger_user_id_fkey, DROP CONSTRAINT ledger_api_key_id_fkey;

CREATE FUNCTION refuse_delete() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted: disable or revoke them', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER users_never_deleted BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER api_keys_never_deleted BEFORE DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();

-- The unlocked look before writing anything; NULL when the hold may go ahead.
CREATE FUNCTION hold_refusal(p_user_id BIGINT, p_key_id BIGINT, p_amount BIGINT) RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM users
                         WHERE id = p_user_id AND enabled AND balance_units >= p_amount)
            THEN 'user_balance'
        WHEN EXISTS (SELECT FROM api_keys
                     WHERE id = p_key_id AND quota_remaining_units < p_amount)
            THEN 'key_limit'
    END
$$;

-- The hold on task p_task_id and its ledger row, then the debits: the key's limit when the key
-- had one as the hold was recorded, then the user's balance (key before user, as releases and
-- refunds run their writes; should two transactions still lock the rows the other way round,
-- PostgreSQL aborts one, whole: a refused hold, or a release or refund that is tried again). A
-- key whose limit is lifted in between refuses this one hold ('key_limit'), which the client
-- may retry.
CREATE FUNCTION record_hold(
    p_task_id BIGINT, p_user_id BIGINT, p_key_id BIGINT, p_amount BIGINT,
    p_deadline_s DOUBLE PRECISION
) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    v_hold_id BIGINT;
    v_key_limited BOOLEAN;
BEGIN
    SELECT quota_remaining_units IS NOT NULL INTO v_key_limited FROM api_keys WHERE id = p_key_id;
    INSERT INTO holds (task_id, user_id, api_key_id, amount_units, key_limited, deadline)
    VALUES (p_task_id, p_user_id, p_key_id, p_amount, v_key_limited,
            now() + make_interval(secs => p_deadline_s))
    RETURNING id INTO v_hold_id;
    INSERT INTO ledger (user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source)
    VALUES (p_user_id, p_key_id, p_task_id, 'HOLD', -p_amount,
            CASE WHEN v_key_limited THEN -p_amount ELSE 0 END, 'hold:' || v_hold_id);
    IF v_key_limited THEN
        UPDATE api_keys SET quota_remaining_units = quota_remaining_units - p_amount
        WHERE id = p_key_id AND quota_remaining_units >= p_amount;
        IF NOT FOUND THEN
            PERFORM refuse_hold('key_limit');
        END IF;
    END IF;
    UPDATE users SET balance_units = balance_units - p_amount, updated_at = now()
    WHERE id = p_user_id AND enabled AND balance_units >= p_amount;
    IF NOT FOUND THEN
        PERFORM refuse_hold('user_balance');
    END IF;
    RETURN v_hold_id;
END
$$;

-- A new task, SUBMITTING, with its open hold.
CREATE FUNCTION hold_new_task(
    p_user_id BIGINT, p_key_id BIGINT, p_amount BIGINT, p_deadline_s DOUBLE PRECISION,
    p_parent_id BIGINT, p_action TEXT, p_price_action TEXT, p_mode TEXT, p_bot_type TEXT,
    p_prompt TEXT, p_state TEXT, p_notify_hook TEXT, p_submit_time_ms BIGINT,
    OUT task_id BIGINT, OUT hold_id BIGINT, OUT refused TEXT
)
LANGUAGE plpgsql AS $$
BEGIN
    refused := hold_refusal(p_user_id, p_key_id, p_amount);
    IF refused IS NOT NULL THEN
        RETURN;
    END IF;
    INSERT INTO tasks (user_id, api_key_id, parent_id, action, price_action, mode, bot_type,
                       price_units, status, prompt, state, notify_hook, submit_time_ms)
    VALUES (p_user_id, p_key_id, p_parent_id, p_action, p_price_action, p_mode, p_bot_type,
            p_amount, 'SUBMITTING', p_prompt, p_state, p_notify_hook, p_submit_time_ms)
    RETURNING id INTO task_id;
    hold_id := record_hold(task_id, p_user_id, p_key_id, p_amount, p_deadline_s);
END
$$;

-- The paid confirmation of a MODAL task that has no open or settled hold; its submit time
-- restarts, since the task only now goes to work. The task's row stays locked from the first
-- look to the commit, so two confirmations of one task cannot both be held.
CREATE FUNCTION hold_modal_task(
    p_user_id BIGINT, p_key_id BIGINT, p_amount BIGINT, p_deadline_s DOUBLE PRECISION,
    p_task_id BIGINT, p_price_action TEXT,
    OUT task_id BIGINT, OUT hold_id BIGINT, OUT refused TEXT
)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM tasks WHERE id = p_task_id AND status = 'MODAL' FOR UPDATE;
    IF NOT FOUND OR EXISTS (SELECT FROM holds h
                            WHERE h.task_id = p_task_id AND h.status IN ('OPEN', 'SETTLED')) THEN
        refused := 'target';
        RETURN;
    END IF;
    refused := hold_refusal(p_user_id, p_key_id, p_amount);
    IF refused IS NOT NULL THEN
        RETURN;
    END IF;
    UPDATE tasks SET price_action = p_price_action, price_units = p_amount, updated_at = now(),
                     submit_time_ms = (extract(epoch FROM now()) * 1000)::BIGINT
    WHERE id = p_task_id;
    task_id := p_task_id;
    hold_id := record_hold(task_id, p_user_id, p_key_id, p_amount, p_deadline_s);
END
$$;
