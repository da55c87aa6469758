-- Client webhooks. Every change of status or progress of a task that has a notifyHook becomes an
-- outbox row in the same transaction as the change (the trigger below), so no change is lost
-- whatever process dies; the row keeps the task as it was at that change. Deliverers take only
-- the oldest pending event of each task, so each task's events go out in order.
CREATE TABLE webhook_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id         BIGINT NOT NULL REFERENCES tasks (id),
    url             TEXT NOT NULL,
    task            JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TIMESTAMPTZ,
    given_up_at     TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX webhook_outbox_pending_idx ON webhook_outbox (task_id, id)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX webhook_outbox_done_idx ON webhook_outbox (created_at)
    WHERE delivered_at IS NOT NULL OR given_up_at IS NOT NULL;

CREATE FUNCTION enqueue_webhook() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_outbox (task_id, url, task) VALUES (NEW.id, NEW.notify_hook, to_jsonb(NEW));
    RETURN NULL;
END
$$;

-- SUBMITTING and REJECTED are never shown to clients: a task's first event is its acceptance.
CREATE TRIGGER tasks_webhook AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (NEW.notify_hook IS NOT NULL
          AND NEW.status NOT IN ('SUBMITTING', 'REJECTED')
          AND (OLD.status, OLD.progress) IS DISTINCT FROM (NEW.status, NEW.progress))
    EXECUTE FUNCTION enqueue_webhook();
