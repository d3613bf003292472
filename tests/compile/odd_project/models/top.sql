-- materialized: view
SELECT * FROM marts.latest WHERE spent > 0
