-- slug: datacenter_ip
-- description: registrations from a data-centre (hosting) IP range
-- version: 1
-- severity: medium
-- flags: [user, ip]
-- lookback: 1d
-- inputs: {registrations: [user_id, time, ip]}
-- params: {category: hosting}
-- VPN ranges are in dc_ranges too (category vpn): people use VPNs, so only `category` counts.
WITH numbered AS (
    -- only well-formed addresses are turned into numbers, so a plain CAST cannot fail
    SELECT
        r.user_id, r.time, r.ip,
        CAST(split_part(r.ip, '.', 1) AS BIGINT) * 16777216
          + CAST(split_part(r.ip, '.', 2) AS BIGINT) * 65536
          + CAST(split_part(r.ip, '.', 3) AS BIGINT) * 256
          + CAST(split_part(r.ip, '.', 4) AS BIGINT) AS ip_number
    FROM registrations AS r
    WHERE r.time >= :window_start AND r.time < :window_end
      AND r.ip SIMILAR TO '[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}'
),
matched AS (
    SELECT
        n.user_id, n.ip, n.time, d.provider, d.category,
        row_number() OVER (PARTITION BY n.user_id, n.time ORDER BY d.start_ip DESC) AS nth
    FROM numbered AS n
    JOIN dc_ranges AS d ON n.ip_number BETWEEN d.start_ip AND d.end_ip
    WHERE d.category = :category
)
SELECT m.user_id, m.ip, m.time AS flagged_at, m.provider, m.category
FROM matched AS m
WHERE m.nth = 1
