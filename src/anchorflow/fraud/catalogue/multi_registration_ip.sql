-- slug: multi_registration_ip
-- description: several registrations from one IP in one campaign/sub_campaign and day, on few user agents
-- version: 1
-- severity: high
-- flags: [user, ip]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, ip, user_agent, device_id, campaign, sub_campaign]}
-- params: {min_registrations: 4, max_user_agents: 2}
-- A carrier-grade NAT IP is shared by many people, each on their own user agent: what gives a
-- farm away is many sign-ups in one placement on the same one or two user agents. The sign-ups
-- are counted per UTC day and per day shifted by 12 hours (noon to noon, read back into the
-- lookback), so a burst across midnight is not cut in two; the members of a noon-to-noon group
-- before the window are flagged again with their own registration time.
WITH span AS (
    SELECT
        r.user_id, r.time, r.ip, r.user_agent, r.device_id, r.campaign, r.sub_campaign,
        CAST(r.time AS DATE) AS day,
        CAST(r.time + INTERVAL 12 HOUR AS DATE) AS shifted_day
    FROM registrations AS r
    WHERE r.time >= :lookback_start AND r.time < :window_end AND r.ip IS NOT NULL
),
groups AS (
    SELECT
        'day' AS grouping, ip, campaign, sub_campaign, day AS period,
        count(*) AS registrations, count(DISTINCT user_agent) AS user_agents,
        count(DISTINCT device_id) AS devices, min(time) AS first_registration_at,
        max(time) AS last_registration_at
    FROM span
    WHERE time >= :window_start
    GROUP BY ip, campaign, sub_campaign, day
    UNION ALL
    SELECT
        'noon_to_noon' AS grouping, ip, campaign, sub_campaign, shifted_day AS period,
        count(*) AS registrations, count(DISTINCT user_agent) AS user_agents,
        count(DISTINCT device_id) AS devices, min(time) AS first_registration_at,
        max(time) AS last_registration_at
    FROM span
    GROUP BY ip, campaign, sub_campaign, shifted_day
    HAVING max(time) >= :window_start
),
flagged AS (
    SELECT
        s.user_id, s.ip, s.time, s.campaign, s.sub_campaign, g.grouping, g.registrations,
        g.user_agents, g.devices, g.first_registration_at, g.last_registration_at,
        row_number() OVER (PARTITION BY s.user_id, s.ip ORDER BY g.grouping, s.time) AS nth
    FROM span AS s
    JOIN groups AS g
      ON g.ip = s.ip
     AND g.campaign IS NOT DISTINCT FROM s.campaign
     AND g.sub_campaign IS NOT DISTINCT FROM s.sub_campaign
     AND ((g.grouping = 'day' AND g.period = s.day AND s.time >= :window_start)
          OR (g.grouping = 'noon_to_noon' AND g.period = s.shifted_day))
    WHERE g.registrations >= :min_registrations AND g.user_agents <= :max_user_agents
)
SELECT
    f.user_id, f.ip, f.time AS flagged_at, f.campaign, f.sub_campaign, f.grouping,
    f.registrations, f.user_agents, f.devices, f.first_registration_at, f.last_registration_at
FROM flagged AS f
WHERE f.nth = 1
