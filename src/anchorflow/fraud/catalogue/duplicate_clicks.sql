-- slug: duplicate_clicks
-- description: the same ip, device and placement clicking again within seconds
-- version: 1
-- severity: medium
-- flags: [event, ip, device]
-- lookback: 1h
-- inputs: {clicks: [click_id, time, ip, device_id, campaign, sub_campaign]}
-- params: {max_seconds: 10}
-- Both clicks of a close pair are flagged, by the run whose window holds the later one (a pair
-- across midnight is found by the next day's run, which reads back `lookback`).
WITH ordered AS (
    SELECT
        c.click_id, c.time, c.ip, c.device_id, c.campaign, c.sub_campaign,
        lag(c.time) OVER placement AS previous_at,
        lead(c.time) OVER placement AS next_at
    FROM clicks AS c
    WHERE c.time >= :lookback_start AND c.time < :window_end
      AND c.ip IS NOT NULL AND c.device_id IS NOT NULL
    WINDOW placement AS (
        PARTITION BY c.ip, c.device_id, c.campaign, c.sub_campaign ORDER BY c.time, c.click_id
    )
),
gaps AS (
    SELECT
        o.*,
        CASE WHEN o.time >= :window_start
             AND o.time - o.previous_at < :max_seconds * INTERVAL 1 SECOND
             THEN extract(epoch FROM o.time - o.previous_at) END AS gap_before,
        CASE WHEN o.next_at >= :window_start
             AND o.next_at - o.time < :max_seconds * INTERVAL 1 SECOND
             THEN extract(epoch FROM o.next_at - o.time) END AS gap_after
    FROM ordered AS o
)
SELECT
    g.click_id AS event_id, 'click' AS event_kind, g.ip, g.device_id, g.time AS flagged_at,
    g.campaign, g.sub_campaign,
    CASE WHEN g.gap_after IS NULL OR g.gap_before < g.gap_after THEN g.gap_before
         ELSE g.gap_after END AS gap_seconds
FROM gaps AS g
WHERE g.gap_before IS NOT NULL OR g.gap_after IS NOT NULL
