-- The relay's schema: who pays (users, groups, API keys), what they pay (prices), where work goes
-- (channels), the work itself (tasks), and the money trail (holds, ledger, idempotency).
-- Money is BIGINT quota units everywhere; ratios are integer basis points (10000 = x1).

CREATE SEQUENCE task_id_seq AS BIGINT CYCLE MAXVALUE 999999999;

-- Gateway task ids: epoch milliseconds followed by three digits, 16 digits, below 2^53 until
-- the year 2255, unique across replicas because the last three digits come from one sequence.
CREATE FUNCTION next_task_id() RETURNS BIGINT
LANGUAGE sql VOLATILE AS $$
    SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT * 1000)
           + (nextval('task_id_seq') % 1000)
$$;

-- Aborts the statement that calls it. A hold statement calls it when it debited the user but
-- cannot complete the hold, so that the whole statement, debit included, is undone.
CREATE FUNCTION refuse_hold(reason TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hold refused' USING ERRCODE = 'GW025', DETAIL = reason;
END
$$;

CREATE TABLE user_groups (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
    ratio_bp    INTEGER NOT NULL DEFAULT 10000 CHECK (ratio_bp >= 0),
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO user_groups (name, ratio_bp, description) VALUES ('default', 10000, 'list price');

CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    group_name     TEXT NOT NULL DEFAULT 'default' REFERENCES user_groups (name),
    balance_units  BIGINT NOT NULL DEFAULT 0 CHECK (balance_units >= 0),
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    webhook_secret TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id               BIGINT NOT NULL REFERENCES users (id),
    name                  TEXT NOT NULL DEFAULT '',
    key_hash              BYTEA NOT NULL UNIQUE,           -- SHA-256 of the whole key
    key_hint              TEXT NOT NULL,                   -- "sk-abcd...wxyz", for listings
    enabled               BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at            TIMESTAMPTZ,
    quota_remaining_units BIGINT CHECK (quota_remaining_units >= 0),  -- NULL = unlimited
    allowed_actions       TEXT[],                          -- NULL = every action
    allowed_cidrs         CIDR[],                          -- NULL = any address
    requests_per_minute   INTEGER CHECK (requests_per_minute > 0),
    max_open_tasks        INTEGER CHECK (max_open_tasks > 0),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at            TIMESTAMPTZ
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Price per priced action (mj_imagine, mj_upscale, ...), before mode and group ratios.
CREATE TABLE prices (
    action      TEXT PRIMARY KEY CHECK (action ~ '^mj_[a-z0-9_]+$'),
    price_units BIGINT NOT NULL CHECK (price_units >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO prices (action, price_units) VALUES
    ('mj_imagine', 100000), ('mj_blend', 100000), ('mj_shorten', 100000), ('mj_modal', 100000),
    ('mj_variation', 100000), ('mj_reroll', 100000), ('mj_high_variation', 100000),
    ('mj_low_variation', 100000), ('mj_pan', 100000), ('mj_zoom', 100000),
    ('mj_describe', 50000), ('mj_upscale', 50000), ('mj_upload', 50000), ('mj_swap_face', 50000),
    ('mj_upscale_hd', 50000), ('mj_custom_zoom', 0), ('mj_inpaint', 0);

CREATE TABLE mode_ratios (
    mode     TEXT PRIMARY KEY CHECK (mode IN ('FAST', 'RELAX', 'TURBO')),
    ratio_bp INTEGER NOT NULL CHECK (ratio_bp >= 0)
);
INSERT INTO mode_ratios (mode, ratio_bp) VALUES ('RELAX', 5000), ('FAST', 10000), ('TURBO', 20000);

CREATE TABLE channels (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    base_url      TEXT NOT NULL CHECK (base_url ~ '^https?://'),
    secret        TEXT,                                    -- the upstream's mj-api-secret
    weight        INTEGER NOT NULL DEFAULT 1 CHECK (weight > 0),
    priority      INTEGER NOT NULL DEFAULT 0,              -- higher tier is tried first
    modes         TEXT[] NOT NULL DEFAULT ARRAY['FAST', 'RELAX', 'TURBO'],
    actions       TEXT[],                                  -- NULL = every action
    bot_types     TEXT[] NOT NULL DEFAULT ARRAY['MID_JOURNEY', 'NIJI_JOURNEY'],
    max_in_flight INTEGER CHECK (max_in_flight > 0),       -- NULL = no cap
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    callback_token TEXT NOT NULL,                          -- names the channel in callback URLs
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id                BIGINT PRIMARY KEY DEFAULT next_task_id() CHECK (id < 9007199254740992),
    user_id           BIGINT NOT NULL REFERENCES users (id),
    api_key_id        BIGINT NOT NULL REFERENCES api_keys (id),
    parent_id         BIGINT REFERENCES tasks (id),
    channel_id        BIGINT REFERENCES channels (id),     -- NULL until a channel accepted it
    upstream_task_id  TEXT,
    action            TEXT NOT NULL,                       -- IMAGINE, UPSCALE, ... as shown
    price_action      TEXT NOT NULL,                       -- mj_imagine, ... as priced
    mode              TEXT NOT NULL CHECK (mode IN ('FAST', 'RELAX', 'TURBO')),
    bot_type          TEXT NOT NULL DEFAULT 'MID_JOURNEY',
    price_units       BIGINT NOT NULL CHECK (price_units >= 0),
    status            TEXT NOT NULL CHECK (status IN (
                          'SUBMITTING', 'REJECTED', 'NOT_START', 'SUBMITTED', 'MODAL',
                          'IN_PROGRESS', 'FAILURE', 'SUCCESS', 'CANCEL')),
    progress          TEXT NOT NULL DEFAULT '0%',
    prompt            TEXT,
    prompt_en         TEXT,
    description       TEXT,
    state             TEXT,                                -- the client's, byte for byte
    notify_hook       TEXT,                                -- the client's; never sent upstream
    submit_time_ms    BIGINT NOT NULL,
    start_time_ms     BIGINT,
    finish_time_ms    BIGINT,
    upstream_image_url TEXT,
    fail_reason       TEXT,
    buttons           JSONB NOT NULL DEFAULT '[]',
    properties        JSONB NOT NULL DEFAULT '{}',
    missing_polls     INTEGER NOT NULL DEFAULT 0,           -- polls in a row the upstream lacked it
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tasks_user_recent_idx ON tasks (user_id, id DESC);
CREATE UNIQUE INDEX tasks_upstream_idx ON tasks (channel_id, upstream_task_id)
    WHERE upstream_task_id IS NOT NULL;
CREATE INDEX tasks_open_idx ON tasks (channel_id, id)
    WHERE status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS');
CREATE INDEX tasks_key_open_idx ON tasks (api_key_id)
    WHERE status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS');

-- SUBMITTING: held, upstream not yet answered. REJECTED: no upstream task came of it (never shown).

-- A hold reserves a price on the user's balance (and the key's limit) until the upstream's answer
-- is known: it is settled when a task was created, released when none was. A task has at most one
-- open and at most one settled hold (a modal task is held again when its /modal call is sent).
CREATE TABLE holds (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id      BIGINT NOT NULL REFERENCES tasks (id),
    user_id      BIGINT NOT NULL REFERENCES users (id),
    api_key_id   BIGINT NOT NULL REFERENCES api_keys (id),
    amount_units BIGINT NOT NULL CHECK (amount_units >= 0),
    key_limited  BOOLEAN NOT NULL,                          -- the key's limit was debited too
    status       TEXT NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'SETTLED', 'RELEASED')),
    deadline     TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ
);
CREATE INDEX holds_open_idx ON holds (deadline) WHERE status = 'OPEN';
CREATE UNIQUE INDEX holds_one_open_idx ON holds (task_id) WHERE status = 'OPEN';
CREATE UNIQUE INDEX holds_one_settled_idx ON holds (task_id) WHERE status = 'SETTLED';

-- Every change of a balance is one row; (source, kind) makes each move happen at most once.
-- A user's balance equals the sum of their rows' amount_units.
CREATE TABLE ledger (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    api_key_id   BIGINT REFERENCES api_keys (id),
    task_id      BIGINT REFERENCES tasks (id),
    kind         TEXT NOT NULL CHECK (kind IN (
                     'TOPUP', 'ADJUST', 'HOLD', 'SETTLE', 'RELEASE', 'REFUND')),
    amount_units BIGINT NOT NULL,
    key_amount_units BIGINT NOT NULL DEFAULT 0,             -- change of the key's limit
    source       TEXT NOT NULL,                 -- "hold:<id>" (HOLD, SETTLE, RELEASE), "task:<id>"
                                                -- (REFUND), "topup:<uuid>", "adjust:<uuid>"
    reason       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (source, kind)
);
CREATE INDEX ledger_user_idx ON ledger (user_id, created_at);
CREATE INDEX ledger_key_idx ON ledger (api_key_id, created_at) WHERE api_key_id IS NOT NULL;

-- Idempotency-Key per API key: the first request's fingerprint and, once done, its answer.
CREATE TABLE idempotency_keys (
    api_key_id      BIGINT NOT NULL REFERENCES api_keys (id),
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash    BYTEA NOT NULL,
    response_status INTEGER,                                -- NULL while in flight
    response_body   JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX idempotency_expiry_idx ON idempotency_keys (expires_at);
