-- slug: click_injection
-- description: registrations that follow their click too fast for a human (click injection)
-- version: 1
-- severity: high
-- flags: [user]
-- lookback: 1d
-- inputs: {clicks: [click_id, time], registrations: [user_id, time, click_id]}
-- params: {max_seconds: 10}
SELECT
    r.user_id, r.time AS flagged_at, r.click_id, c.time AS clicked_at,
    extract(epoch FROM r.time - c.time) AS seconds_after_click
FROM registrations AS r
JOIN clicks AS c ON c.click_id = r.click_id
WHERE r.time >= :window_start AND r.time < :window_end
  AND c.time >= :lookback_start AND c.time <= r.time
  AND r.time - c.time < :max_seconds * INTERVAL 1 SECOND
