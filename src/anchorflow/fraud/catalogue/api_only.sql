-- slug: api_only
-- description: users active only through the server API, never seen by a front end
-- version: 1
-- severity: medium
-- flags: [user]
-- lookback: 7d
-- inputs: {events: [user_id, time, is_server]}
-- params: {min_server_events: 3}
-- A genuine user's server events follow front-end ones; a front-end event anywhere in the
-- lookback clears the user. Judged when the user has a server event in the window.
WITH users AS (
    SELECT
        e.user_id,
        count(*) FILTER (WHERE e.is_server) AS server_events,
        count(*) FILTER (WHERE NOT e.is_server) AS front_end_events,
        min(e.time) FILTER (WHERE e.is_server AND e.time >= :window_start) AS first_in_window,
        min(e.time) FILTER (WHERE e.is_server) AS first_server_event_at,
        max(e.time) FILTER (WHERE e.is_server) AS last_server_event_at
    FROM events AS e
    WHERE e.time >= :lookback_start AND e.time < :window_end
      AND e.user_id IS NOT NULL AND e.is_server IS NOT NULL
    GROUP BY e.user_id
)
SELECT
    u.user_id, u.first_in_window AS flagged_at, u.server_events, u.first_server_event_at,
    u.last_server_event_at
FROM users AS u
WHERE u.front_end_events = 0 AND u.server_events >= :min_server_events
  AND u.first_in_window IS NOT NULL
