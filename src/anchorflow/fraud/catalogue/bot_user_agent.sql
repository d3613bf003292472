-- slug: bot_user_agent
-- description: users who register or send events with the user agent of a script or headless browser
-- version: 1
-- severity: high
-- flags: [user]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, user_agent], events: [user_id, time, user_agent]}
-- params: {}
-- The patterns are bot_agents' lower-case LIKE patterns; a user is flagged once per window, at
-- the first matching registration or event.
WITH seen AS (
    SELECT r.user_id, r.time, r.user_agent, 'registration' AS seen_in
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end AND r.user_agent IS NOT NULL
    UNION ALL
    SELECT e.user_id, e.time, e.user_agent, 'event' AS seen_in
    FROM events AS e
    WHERE e.time >= :window_start AND e.time < :window_end AND e.user_agent IS NOT NULL
      AND e.user_id IS NOT NULL
),
agents AS (
    SELECT DISTINCT s.user_agent FROM seen AS s
),
bots AS (
    -- each distinct user agent is matched once, not each row: there are far fewer of them
    SELECT a.user_agent, min(b.pattern) AS pattern
    FROM agents AS a
    JOIN bot_agents AS b ON lower(a.user_agent) LIKE b.pattern
    GROUP BY a.user_agent
),
matched AS (
    SELECT
        s.user_id, s.time, s.user_agent, s.seen_in, t.pattern,
        row_number() OVER (PARTITION BY s.user_id ORDER BY s.time, s.seen_in DESC) AS nth
    FROM seen AS s
    JOIN bots AS t ON t.user_agent = s.user_agent
)
SELECT m.user_id, m.time AS flagged_at, m.user_agent, m.pattern, m.seen_in
FROM matched AS m
WHERE m.nth = 1
