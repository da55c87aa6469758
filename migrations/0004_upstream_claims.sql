-- What a channel said, in a callback, of a task whose submit answer the gateway never saw (the
-- answer was lost on the way, or the process died first). When that task's hold reaches its
-- deadline unresolved, the sweeper asks the channel about each claim: a task the channel has is
-- kept and charged, and the hold is released only when no channel has one.
CREATE TABLE upstream_claims (
    task_id          BIGINT NOT NULL REFERENCES tasks (id),
    channel_id       BIGINT NOT NULL REFERENCES channels (id),
    upstream_task_id TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, channel_id, upstream_task_id)
);
