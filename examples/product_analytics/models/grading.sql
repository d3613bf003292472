-- MaestroQA's grades, wide: every graded ticket with its agent's team and the team's country.
-- A ticket carries whichever of the agent's ids its helpdesk knows; staging.agent_groups holds
-- every one of them (the groups' agent_ids exploded), so the join finds the team either way.
SELECT
    s.gradable_id,
    s.agent_id,
    s.agent_email,
    s.grader,
    g.group_name AS team,
    CASE g.group_name
        WHEN 'Ru Team' THEN 'RU'
        WHEN 'FR Team' THEN 'FR'
        WHEN 'UK Team' THEN 'GB'
    END AS country,
    CAST(s.date_graded AS DATE) AS graded_day,
    s.rubric_score,
    s.max_rubric_score,
    ROUND(100.0 * s.rubric_score / s.max_rubric_score, 1) AS score_pct
FROM staging.grades AS s
LEFT JOIN staging.agent_groups AS g
    ON g.agent_id = s.agent_id
    AND g.group_name IN ('Ru Team', 'FR Team', 'UK Team')
