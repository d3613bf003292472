-- slug: conversion_anomaly
-- description: a sub_campaign whose registrations per click are far above the rest of its campaign
-- version: 1
-- severity: medium
-- flags: [user]
-- lookback: 1d
-- inputs: {clicks: [time, campaign, sub_campaign], registrations: [user_id, time, click_id, campaign, sub_campaign]}
-- params: {min_ratio: 1.7, min_clicks: 30, min_registrations: 5}
-- Per day, a sub_campaign's rate (registrations claiming a click / clicks) is set against the
-- rate of its campaign's other sub_campaigns, so the outlier does not lift its own yardstick.
-- The users registered from a flagged sub_campaign that day are flagged.
WITH day_clicks AS (
    SELECT c.campaign, c.sub_campaign, CAST(c.time AS DATE) AS day, count(*) AS clicks
    FROM clicks AS c
    WHERE c.time >= :window_start AND c.time < :window_end
      AND c.campaign IS NOT NULL AND c.sub_campaign IS NOT NULL
    GROUP BY c.campaign, c.sub_campaign, CAST(c.time AS DATE)
),
day_registrations AS (
    SELECT r.campaign, r.sub_campaign, CAST(r.time AS DATE) AS day, count(*) AS registrations
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end AND r.click_id IS NOT NULL
      AND r.campaign IS NOT NULL AND r.sub_campaign IS NOT NULL
    GROUP BY r.campaign, r.sub_campaign, CAST(r.time AS DATE)
),
rates AS (
    SELECT
        c.campaign, c.sub_campaign, c.day, c.clicks,
        COALESCE(g.registrations, 0) AS registrations,
        sum(c.clicks) OVER (PARTITION BY c.campaign, c.day) - c.clicks AS other_clicks,
        sum(COALESCE(g.registrations, 0)) OVER (PARTITION BY c.campaign, c.day)
            - COALESCE(g.registrations, 0) AS other_registrations
    FROM day_clicks AS c
    LEFT JOIN day_registrations AS g
      ON g.campaign = c.campaign AND g.sub_campaign = c.sub_campaign AND g.day = c.day
),
anomalies AS (
    SELECT
        a.*,
        CAST(a.registrations AS DOUBLE) / a.clicks AS rate,
        CAST(a.other_registrations AS DOUBLE) / a.other_clicks AS campaign_rate
    FROM rates AS a
    WHERE a.clicks >= :min_clicks AND a.registrations >= :min_registrations
      AND a.other_clicks > 0 AND a.other_registrations > 0
      AND CAST(a.registrations AS DOUBLE) * a.other_clicks
          >= :min_ratio * a.other_registrations * a.clicks
)
SELECT
    r.user_id, r.time AS flagged_at, a.campaign, a.sub_campaign, a.clicks, a.registrations,
    a.rate, a.campaign_rate, a.rate / a.campaign_rate AS ratio
FROM registrations AS r
JOIN anomalies AS a
  ON a.campaign = r.campaign AND a.sub_campaign = r.sub_campaign
 AND a.day = CAST(r.time AS DATE)
WHERE r.time >= :window_start AND r.time < :window_end AND r.click_id IS NOT NULL
