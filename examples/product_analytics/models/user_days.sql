-- Daily user activity: one row per day, user (or device before sign-up), country and platform,
-- with the events of that day. What the dashboards' active-user tiles and the retention grid
-- read instead of every event: a few rows per active user and day rather than every event
-- (bench/dashboards: 50M events, p95 of those tiles from seconds to milliseconds).
-- materialized: incremental
-- time_column: day
SELECT
    CAST(event_time AS DATE) AS day,
    COALESCE(user_id, device_id) AS user_key,
    user_id,
    country,
    platform,
    COUNT(*) AS events,
    MIN(event_time) AS first_event_at
FROM staging.events
GROUP BY ALL
