-- The newer task kinds: video (new, extend, and picking one video of a batch), edit, retexture.
-- Their default prices follow the operator's imagine price: a video batch is eight imagines, an
-- extend the same, an edit and a retexture one imagine each; picking one video costs an upscale.
INSERT INTO prices (action, price_units)
SELECT action, times * coalesce(
    (SELECT price_units FROM prices WHERE action = base), default_units)
FROM (VALUES ('mj_video', 'mj_imagine', 8, 100000), ('mj_video_extend', 'mj_imagine', 8, 100000),
             ('mj_edits', 'mj_imagine', 1, 100000), ('mj_retexture', 'mj_imagine', 1, 100000),
             ('mj_video_upscale', 'mj_upscale', 1, 50000))
    AS v (action, base, times, default_units)
ON CONFLICT (action) DO NOTHING;

-- What a task's result is besides its one image: the upstream's URLs of the single images of a
-- grid ({"images": [{url, thumbnail}]}) and of videos ({"videos": [{url, thumbnail}]}). Never
-- shown: clients get the gateway's own signed URLs for each.
ALTER TABLE tasks ADD COLUMN upstream_media JSONB NOT NULL DEFAULT '{}';

-- How many image URLs the upstream may put in front of a task's prompts (one per image sent
-- with it, inherited by its follow-ups); the gateway takes them off what it shows.
ALTER TABLE tasks ADD COLUMN prompt_urls SMALLINT NOT NULL DEFAULT 0 CHECK (prompt_urls >= 0);

-- The text without the first ``urls`` URLs it starts with (each alone, or in <>, then a blank or
-- the end); the rest of the text as it is. gateway/tasks/views.py does the same in Python.
CREATE FUNCTION without_leading_urls(value TEXT, urls SMALLINT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN urls > 0 AND value IS NOT NULL
                THEN regexp_replace(
                    value, '^\s*(<?https?://\S+?>?(\s+|$)){1,' || least(urls, 255) || '}', '')
                ELSE value END
$$;
