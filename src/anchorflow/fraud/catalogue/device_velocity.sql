-- slug: device_velocity
-- description: one device that registers several users within the lookback
-- version: 1
-- severity: high
-- flags: [user, device]
-- lookback: 2d
-- inputs: {registrations: [user_id, time, device_id]}
-- params: {min_users: 3}
-- The users of a device count from lookback_start; a device is judged when one of its
-- registrations falls in the window, and then all its users in that span are flagged (the
-- earlier ones again with their own registration time: the same rows on a re-run).
WITH spans AS (
    SELECT r.user_id, r.time, r.device_id
    FROM registrations AS r
    WHERE r.time >= :lookback_start AND r.time < :window_end AND r.device_id IS NOT NULL
),
devices AS (
    SELECT device_id, count(DISTINCT user_id) AS users, min(time) AS first_registration_at,
           max(time) AS last_registration_at
    FROM spans
    GROUP BY device_id
    HAVING count(DISTINCT user_id) >= :min_users AND max(time) >= :window_start
)
SELECT
    s.user_id, s.device_id, s.time AS flagged_at, d.users, d.first_registration_at,
    d.last_registration_at
FROM spans AS s
JOIN devices AS d ON d.device_id = s.device_id
