-- slug: ip_velocity
-- description: an IP that clicks many times a day and never converts
-- version: 1
-- severity: medium
-- flags: [event, ip]
-- lookback: 1d
-- inputs: {clicks: [click_id, time, ip], registrations: [user_id, time, click_id, ip]}
-- params: {min_clicks: 30, max_registrations: 0}
-- Conversions are registrations that claim one of the IP's clicks of the day, or that come
-- from the IP that day: a shared (carrier NAT) IP clicks a lot but its people sign up.
WITH day_clicks AS (
    SELECT
        c.click_id, c.time, c.ip, CAST(c.time AS DATE) AS day,
        count(*) OVER (PARTITION BY c.ip, CAST(c.time AS DATE)) AS clicks
    FROM clicks AS c
    WHERE c.time >= :window_start AND c.time < :window_end AND c.ip IS NOT NULL
),
busy AS (
    SELECT DISTINCT ip, day, clicks FROM day_clicks WHERE clicks >= :min_clicks
),
converted AS (
    SELECT b.ip, b.day, r.user_id
    FROM busy AS b
    JOIN registrations AS r ON r.ip = b.ip AND CAST(r.time AS DATE) = b.day
    WHERE r.time >= :window_start AND r.time < :window_end
    UNION
    SELECT d.ip, d.day, r.user_id
    FROM day_clicks AS d
    JOIN registrations AS r ON r.click_id = d.click_id
    WHERE d.clicks >= :min_clicks AND r.time >= :window_start AND r.time < :window_end
),
conversions AS (
    SELECT b.ip, b.day, b.clicks, count(v.user_id) AS registrations
    FROM busy AS b
    LEFT JOIN converted AS v ON v.ip = b.ip AND v.day = b.day
    GROUP BY b.ip, b.day, b.clicks
)
SELECT
    d.click_id AS event_id, 'click' AS event_kind, d.ip, d.time AS flagged_at,
    v.clicks, v.registrations
FROM day_clicks AS d
JOIN conversions AS v ON v.ip = d.ip AND v.day = d.day
WHERE v.registrations <= :max_registrations
