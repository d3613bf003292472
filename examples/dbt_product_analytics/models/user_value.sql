-- Every user of the anchor model's latest perspective (plan, country, first platform) with
-- what they bought; users without purchases have 0.
select
    u.user_id,
    u.plan,
    u.country,
    u.first_platform,
    coalesce(p.purchases, 0) as purchases,
    coalesce(p.amount, 0) as amount
from {{ source('anchor', 'User_latest') }} as u
left join {{ ref('purchases_per_user') }} as p using (user_id)
