-- Each signed-up user's first day, per country and platform: what the retention grid's cohorts
-- read (`first_seen:` in dashboards/overview.yml) rather than grouping every row of user_days by
-- user. A user's first day among the user-days of any country or platform filter is the least
-- first_day of their rows here under the same filter, so the cohorts are the same.
SELECT
    user_id,
    country,
    platform,
    CAST(MIN(event_time) AS DATE) AS first_day
FROM staging.events
WHERE user_id IS NOT NULL
GROUP BY ALL
