-- slug: multi_registration_ip
-- description: several registrations from one IP in one campaign/sub_campaign and day, on few user agents
-- version: 1
-- severity: high
-- flags: [user, ip]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, ip, user_agent, device_id, campaign, sub_campaign]}
-- params: {min_registrations: 4, max_user_agents: 2}
-- A carrier-grade NAT IP is shared by many people, each on their own user agent: what gives a
-- farm away is many sign-ups in one placement on the same one or two user agents.
WITH day_registrations AS (
    SELECT
        r.user_id, r.time, r.ip, r.campaign, r.sub_campaign,
        count(*) OVER (PARTITION BY r.ip, r.campaign, r.sub_campaign, CAST(r.time AS DATE))
            AS registrations,
        min(r.time) OVER (PARTITION BY r.ip, r.campaign, r.sub_campaign, CAST(r.time AS DATE))
            AS first_registration_at,
        max(r.time) OVER (PARTITION BY r.ip, r.campaign, r.sub_campaign, CAST(r.time AS DATE))
            AS last_registration_at
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end AND r.ip IS NOT NULL
),
agents AS (
    SELECT
        r.ip, r.campaign, r.sub_campaign, CAST(r.time AS DATE) AS day,
        count(DISTINCT r.user_agent) AS user_agents,
        count(DISTINCT r.device_id) AS devices
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end AND r.ip IS NOT NULL
    GROUP BY r.ip, r.campaign, r.sub_campaign, CAST(r.time AS DATE)
)
SELECT
    d.user_id, d.ip, d.time AS flagged_at, d.campaign, d.sub_campaign, d.registrations,
    a.user_agents, a.devices, d.first_registration_at, d.last_registration_at
FROM day_registrations AS d
JOIN agents AS a
  ON a.ip = d.ip AND a.day = CAST(d.time AS DATE)
 AND a.campaign IS NOT DISTINCT FROM d.campaign
 AND a.sub_campaign IS NOT DISTINCT FROM d.sub_campaign
WHERE d.registrations >= :min_registrations AND a.user_agents <= :max_user_agents
