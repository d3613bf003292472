-- daily_active_users has one row per day and platform: rows returned here fail the test.
select day, platform, count(*) as rows
from {{ ref('daily_active_users') }}
group by all
having count(*) > 1
