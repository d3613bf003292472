-- What each signed-up user bought: purchases, their total and the first and last one.
select
    user_id,
    count(*) as purchases,
    sum(amount) as amount,
    min(event_time) as first_purchase_at,
    max(event_time) as last_purchase_at
from {{ source('staging', 'purchases') }}
group by user_id
