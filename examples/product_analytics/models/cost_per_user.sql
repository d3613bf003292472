-- Ad spend per campaign against the users it acquired: the spend comes from the ad platforms'
-- daily CSV files (the `costs` files source), the users from the anchor model (each user's first
-- campaign, the User_Campaign tie).
-- materialized: view
WITH spend AS (
    SELECT utm_campaign, SUM(cost) AS cost, SUM(clicks) AS clicks
    FROM staging.campaign_costs
    GROUP BY ALL
), acquired AS (
    SELECT c.utm_campaign, COUNT(DISTINCT t.user_id) AS users
    FROM anchor."User_Campaign" AS t
    JOIN anchor."Campaign" AS c ON c.id = t.campaign_id
    GROUP BY ALL
)
SELECT
    s.utm_campaign,
    s.cost,
    s.clicks,
    a.users,
    ROUND(s.cost / NULLIF(a.users, 0), 2) AS cost_per_user
FROM spend AS s
LEFT JOIN acquired AS a USING (utm_campaign)
ORDER BY cost_per_user DESC NULLS LAST
