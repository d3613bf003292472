-- The wide grading mart of the reference article: every graded ticket with its agent's team and
-- the team's country, once for the agent's team and once for "All Agents". A ticket carries
-- whichever of the agent's ids its helpdesk knows; the exploded groups hold every one of them.
SELECT
    s.gradable_id,
    s.agent_id,
    s.grader,
    s.agent_name,
    s.agent_email,
    g.group_name,
    CASE g.group_name
        WHEN 'Ru Team' THEN 'RU'
        WHEN 'FR Team' THEN 'FR'
        WHEN 'UK Team' THEN 'GB'
        WHEN 'All Agents' THEN 'All'
    END AS country,
    CAST(s.date_graded AS DATE) AS graded_dt,
    s.rubric_score,
    s.max_rubric_score
FROM staging.scores AS s
LEFT JOIN staging.agent_groups AS g
    ON g.agent_id = s.agent_id
    AND g.group_name IN ('All Agents', 'Ru Team', 'FR Team', 'UK Team')
ORDER BY graded_dt, country, s.gradable_id
