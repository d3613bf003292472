-- Purchases and deposits per day and country, on top of daily_active_users for the per-user rate.
SELECT
    CAST(e.event_time AS DATE) AS day,
    e.country,
    SUM(e.amount) FILTER (WHERE e.event_type = 'purchase') AS purchase_amount,
    SUM(e.amount) FILTER (WHERE e.event_type = 'deposit') AS deposit_amount,
    COUNT(DISTINCT COALESCE(e.user_id, e.device_id)) AS active_users,
    (SELECT SUM(d.active_users) FROM marts.daily_active_users AS d
      WHERE d.day = CAST(e.event_time AS DATE)) AS all_active_users
FROM staging.events AS e
GROUP BY ALL
ORDER BY day, country
