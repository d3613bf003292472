SELECT c."userId", c."Total", s.total AS spent
FROM anchor."Customer_latest" AS c LEFT JOIN marts.spend AS s USING ("userId")
