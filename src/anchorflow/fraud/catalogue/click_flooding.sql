-- slug: click_flooding
-- description: a sub_campaign whose clicks are spread flat over the day, as a click flooder's are
-- version: 1
-- severity: high
-- flags: [user]
-- lookback: 1d
-- inputs: {clicks: [time, campaign, sub_campaign], registrations: [user_id, time, campaign, sub_campaign]}
-- params: {min_clicks: 100, min_night_share: 0.11, night_end_hour: 6}
-- People click by day: a genuine placement has a few per cent of its clicks between midnight
-- and `night_end_hour` UTC; a flooder's are flat (a quarter of the day). The users registered
-- from a flagged sub_campaign that day are flagged.
WITH placements AS (
    SELECT
        c.campaign, c.sub_campaign, CAST(c.time AS DATE) AS day, count(*) AS clicks,
        count(*) FILTER (WHERE extract(hour FROM c.time) < :night_end_hour) AS night_clicks
    FROM clicks AS c
    WHERE c.time >= :window_start AND c.time < :window_end AND c.sub_campaign IS NOT NULL
    GROUP BY c.campaign, c.sub_campaign, CAST(c.time AS DATE)
),
flat AS (
    SELECT p.*, CAST(p.night_clicks AS DOUBLE) / p.clicks AS night_share
    FROM placements AS p
    WHERE p.clicks >= :min_clicks
      AND CAST(p.night_clicks AS DOUBLE) / p.clicks >= :min_night_share
)
SELECT
    r.user_id, r.time AS flagged_at, f.campaign, f.sub_campaign, f.clicks, f.night_clicks,
    f.night_share
FROM registrations AS r
JOIN flat AS f
  ON f.sub_campaign = r.sub_campaign AND f.campaign IS NOT DISTINCT FROM r.campaign
 AND f.day = CAST(r.time AS DATE)
WHERE r.time >= :window_start AND r.time < :window_end
