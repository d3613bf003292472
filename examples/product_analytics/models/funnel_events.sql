-- Every event of a signed-up user, with the columns the purchase funnel reads, ordered by event
-- type then time: the funnel tile (dashboards/overview.yml) reads it instead of staging.events.
-- A funnel needs each user's events in order, so it holds events, not days; in this order a
-- funnel's scan reads only the blocks of its steps' types in the range (DuckDB skips the others
-- by their min/max), rather than every event of the range. Every event with a user_id is here,
-- so any funnel over it counts exactly what it counts over staging.events (which leaves the
-- events without a user out too).
SELECT
    event_time,
    user_id,
    event_type,
    country,
    platform
FROM staging.events
WHERE user_id IS NOT NULL
ORDER BY event_type, event_time
