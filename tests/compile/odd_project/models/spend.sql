-- materialized: view
SELECT "userId", sum(total) AS total, count(*) AS "order count"
FROM staging."Order"
WHERE "userId" <> 'O''Brien'
GROUP BY ALL
