-- Every event of a signed-up user, with the columns the purchase funnel reads, ordered by event
-- type then time: the funnel tile (dashboards/overview.yml) reads it instead of staging.events.
-- A funnel needs each user's events in order, so it holds events, not days; in this order a
-- funnel's scan reads only the blocks of its steps' types in the range (DuckDB skips the others
-- by their min/max), rather than every event of the range. user_key numbers the user_ids
-- (one number per user_id, renumbered at each build): the funnel groups and joins on it, which
-- is cheaper than on the text. Every event with a user_id is here, so any funnel over it counts
-- exactly what it counts over staging.events (which leaves the events without a user out too).
WITH users AS (
    SELECT user_id, ROW_NUMBER() OVER (ORDER BY user_id) AS user_key
    FROM (SELECT DISTINCT user_id FROM staging.events WHERE user_id IS NOT NULL) AS signed_up
)
SELECT
    e.event_time,
    u.user_key,
    e.user_id,
    e.event_type,
    e.country,
    e.platform
FROM staging.events AS e
JOIN users AS u ON u.user_id = e.user_id
ORDER BY e.event_type, e.event_time
