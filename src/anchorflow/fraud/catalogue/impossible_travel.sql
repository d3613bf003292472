-- slug: impossible_travel
-- description: a user whose events switch country faster than anyone travels
-- version: 1
-- severity: medium
-- flags: [user]
-- lookback: 1d
-- inputs: {events: [user_id, time, country, is_server]}
-- params: {max_minutes: 120, front_end_only: true}
-- Server-API events carry the server's location, not the person's, so by default only
-- front-end events count. A user is flagged once per window, at the first fast switch.
WITH located AS (
    SELECT
        e.user_id, e.time, e.country,
        lag(e.country) OVER (PARTITION BY e.user_id ORDER BY e.time) AS previous_country,
        lag(e.time) OVER (PARTITION BY e.user_id ORDER BY e.time) AS previous_at
    FROM events AS e
    WHERE e.time >= :lookback_start AND e.time < :window_end
      AND e.user_id IS NOT NULL AND e.country IS NOT NULL
      AND (NOT :front_end_only OR NOT COALESCE(e.is_server, FALSE))
),
switches AS (
    SELECT
        l.*,
        row_number() OVER (PARTITION BY l.user_id ORDER BY l.time) AS nth
    FROM located AS l
    WHERE l.time >= :window_start AND l.country <> l.previous_country
      AND l.time - l.previous_at < :max_minutes * INTERVAL 1 MINUTE
)
SELECT
    s.user_id, s.time AS flagged_at, s.previous_country AS from_country,
    s.country AS to_country, extract(epoch FROM s.time - s.previous_at) / 60 AS minutes
FROM switches AS s
WHERE s.nth = 1
