-- Daily active users by platform, from the typed events: a user is their user_id, or the device
-- before sign-up.
select
    cast(event_time as date) as day,
    platform,
    count(distinct coalesce(user_id, device_id)) as active_users,
    count(*) as events
from {{ source('staging', 'events') }}
group by all
