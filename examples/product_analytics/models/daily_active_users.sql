-- Daily active users by platform: a user is their user_id, or the device before sign-up.
-- materialized: incremental
-- time_column: day
SELECT
    CAST(event_time AS DATE) AS day,
    platform,
    COUNT(DISTINCT COALESCE(user_id, device_id)) AS active_users,
    COUNT(*) AS events
FROM staging.events
GROUP BY ALL
ORDER BY day, platform
