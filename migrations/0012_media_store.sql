-- The media store: every result of a SUCCESS task kept by the gateway, so it outlives the
-- upstream's expiring links and is downloaded from the upstream once.

-- One copy job per task that ended SUCCESS with a result, queued in the statement that ends it.
-- A job is claimed for a while (claimed_until) by the process copying it; one that dies lets the
-- claim lapse and the job is taken again. Refused results (too large, mistyped, at a private
-- address) end FAILED at once; failed downloads are tried again later, up to a limit.
CREATE TABLE media_copies (
    task_id         BIGINT PRIMARY KEY,
    status          TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DONE', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at         TIMESTAMPTZ
);
CREATE INDEX media_copies_due ON media_copies (next_attempt_at) WHERE status = 'PENDING';

-- What is stored, per task and part: 'image' (the task's image), 'image-<n>' (the single images
-- of a grid), 'video-<n>', and '<part>-thumb' (a small WebP, or a video's thumbnail).
CREATE TABLE media_objects (
    task_id      BIGINT NOT NULL,
    part         TEXT NOT NULL CHECK (part ~ '^(image|(image|video)-[1-9][0-9]?)(-thumb)?$'),
    store_key    TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL CHECK (size_bytes >= 0),
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    stored_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, part)
);
CREATE INDEX media_objects_stored_at ON media_objects (stored_at);

-- When retention deleted a task's stored media: its record says so, and its image is gone.
ALTER TABLE tasks ADD COLUMN media_deleted_at TIMESTAMPTZ;

-- Tasks that ended SUCCESS in the last day are copied too: older upstream links have expired.
INSERT INTO media_copies (task_id)
SELECT id FROM tasks
WHERE status = 'SUCCESS' AND upstream_image_url IS NOT NULL
  AND finish_time_ms > (extract(epoch FROM now()) * 1000)::BIGINT - 86400000;
