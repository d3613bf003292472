-- slug: conversion_anomaly
-- description: a sub_campaign whose registrations per click are far above the rest of its campaign
-- version: 2
-- severity: medium
-- flags: [user]
-- lookback: 1d
-- inputs: {clicks: [time, campaign, sub_campaign], registrations: [user_id, time, click_id, campaign, sub_campaign]}
-- params: {min_ratio: 1.7, min_clicks: 30, min_registrations: 5, min_z: 3.0}
-- Per day, a sub_campaign's rate (registrations claiming a click / clicks) is set against the
-- median rate of its campaign's sub_campaigns (those with min_clicks): a median, because a
-- campaign's pooled rate is moved by the very publishers this rule looks for (a flood of
-- clicks that never convert lowers it, and every honest sub_campaign then looks too good).
-- The excess must also be unlikely by chance: at least `min_z` binomial standard deviations
-- above the registrations the campaign's rate predicts (a small genuine sub_campaign's rate is
-- noisy; at 30 clicks a day, 1.7x its campaign's happens by luck).
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
        CAST(COALESCE(g.registrations, 0) AS DOUBLE) / c.clicks AS rate
    FROM day_clicks AS c
    LEFT JOIN day_registrations AS g
      ON g.campaign = c.campaign AND g.sub_campaign = c.sub_campaign AND g.day = c.day
),
yardsticks AS (
    SELECT s.campaign, s.day, median(s.rate) AS campaign_rate, count(*) AS sub_campaigns
    FROM rates AS s
    WHERE s.clicks >= :min_clicks
    GROUP BY s.campaign, s.day
),
anomalies AS (
    SELECT
        a.campaign, a.sub_campaign, a.day, a.clicks, a.registrations, a.rate,
        y.campaign_rate,
        (a.registrations - a.clicks * y.campaign_rate)
            / sqrt(a.clicks * y.campaign_rate * (1 - y.campaign_rate)) AS z
    FROM rates AS a
    JOIN yardsticks AS y ON y.campaign = a.campaign AND y.day = a.day
    WHERE a.clicks >= :min_clicks AND a.registrations >= :min_registrations
      AND y.sub_campaigns >= 3 AND y.campaign_rate > 0 AND y.campaign_rate < 1
      AND a.rate >= :min_ratio * y.campaign_rate
)
SELECT
    r.user_id, r.time AS flagged_at, o.campaign, o.sub_campaign, o.clicks, o.registrations,
    o.rate, o.campaign_rate, o.rate / o.campaign_rate AS ratio, o.z
FROM registrations AS r
JOIN anomalies AS o
  ON o.campaign = r.campaign AND o.sub_campaign = r.sub_campaign
 AND o.day = CAST(r.time AS DATE) AND o.z >= :min_z
WHERE r.time >= :window_start AND r.time < :window_end AND r.click_id IS NOT NULL
