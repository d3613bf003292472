-- slug: no_activity
-- description: a sub_campaign whose registered users mostly never send an event after signing up
-- version: 1
-- severity: medium
-- flags: [user]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, campaign, sub_campaign], events: [user_id, time]}
-- params: {follow_up_hours: 24, min_registrations: 20, min_inactive_share: 0.5}
-- A registration is judged once `follow_up_hours` have passed by the newest event in the data
-- (until then it is left out, so a window is best run again later); only the inactive users of
-- a flagged sub_campaign/day are flagged.
WITH newest AS (
    SELECT max(e.time) AS newest_at FROM events AS e
),
signups AS (
    SELECT r.user_id, r.time, r.campaign, r.sub_campaign, CAST(r.time AS DATE) AS day
    FROM registrations AS r
    CROSS JOIN newest AS n
    WHERE r.time >= :window_start AND r.time < :window_end AND r.sub_campaign IS NOT NULL
      AND r.time + :follow_up_hours * INTERVAL 1 HOUR <= n.newest_at
),
active AS (
    -- a join, not NOT EXISTS per row: PostgreSQL runs a correlated subquery once per sign-up
    SELECT DISTINCT s.user_id, s.time
    FROM signups AS s
    JOIN events AS e
      ON e.user_id = s.user_id AND e.time > s.time
     AND e.time <= s.time + :follow_up_hours * INTERVAL 1 HOUR
),
judged AS (
    SELECT s.*, a.user_id IS NULL AS inactive
    FROM signups AS s
    LEFT JOIN active AS a ON a.user_id = s.user_id AND a.time = s.time
),
placements AS (
    SELECT
        campaign, sub_campaign, day, count(*) AS registrations,
        count(*) FILTER (WHERE inactive) AS inactive_registrations
    FROM judged
    GROUP BY campaign, sub_campaign, day
    HAVING count(*) >= :min_registrations
       AND count(*) FILTER (WHERE inactive) >= :min_inactive_share * count(*)
)
SELECT
    j.user_id, j.time AS flagged_at, p.campaign, p.sub_campaign, p.registrations,
    p.inactive_registrations,
    CAST(p.inactive_registrations AS DOUBLE) / p.registrations AS inactive_share
FROM judged AS j
JOIN placements AS p
  ON p.sub_campaign = j.sub_campaign AND p.campaign IS NOT DISTINCT FROM j.campaign
 AND p.day = j.day
WHERE j.inactive
