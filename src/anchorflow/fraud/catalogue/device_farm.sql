-- slug: device_farm
-- description: a sub_campaign whose registrations of a day are nearly all on one or two device models
-- version: 1
-- severity: high
-- flags: [user]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, device_model, os_version, campaign, sub_campaign]}
-- params: {min_registrations: 25, min_combo_share: 0.25, min_dominant_share: 0.6}
-- A combo (device_model + os_version) is dominant when it holds `min_combo_share` of the
-- day's registrations of the sub_campaign; the sub_campaign is a farm when its dominant combos
-- hold `min_dominant_share`. Only the users on the dominant combos are flagged.
WITH day_registrations AS (
    SELECT
        r.user_id, r.time, r.campaign, r.sub_campaign, CAST(r.time AS DATE) AS day,
        COALESCE(r.device_model, '') || ' / ' || COALESCE(r.os_version, '') AS combo,
        count(*) OVER (PARTITION BY r.campaign, r.sub_campaign, CAST(r.time AS DATE))
            AS registrations
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end AND r.sub_campaign IS NOT NULL
),
combos AS (
    SELECT campaign, sub_campaign, day, combo, registrations, count(*) AS combo_registrations
    FROM day_registrations
    GROUP BY campaign, sub_campaign, day, combo, registrations
),
dominant AS (
    SELECT
        c.*,
        sum(c.combo_registrations) OVER (PARTITION BY c.campaign, c.sub_campaign, c.day)
            AS dominant_registrations
    FROM combos AS c
    WHERE c.registrations >= :min_registrations
      AND c.combo_registrations >= :min_combo_share * c.registrations
)
SELECT
    d.user_id, d.time AS flagged_at, d.campaign, d.sub_campaign, d.combo, m.registrations,
    m.combo_registrations,
    CAST(m.dominant_registrations AS DOUBLE) / m.registrations AS dominant_share
FROM day_registrations AS d
JOIN dominant AS m
  ON m.sub_campaign = d.sub_campaign AND m.campaign IS NOT DISTINCT FROM d.campaign
 AND m.day = d.day AND m.combo = d.combo
WHERE m.dominant_registrations >= :min_dominant_share * m.registrations
