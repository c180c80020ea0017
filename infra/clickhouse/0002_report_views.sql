-- The rollups the reports read (SPEC section 5), as views over the facts, so
-- they are always exactly the current facts: a correction to a user's source
-- moves its money between rows with no rollup to repair.

CREATE OR REPLACE VIEW {db}.roi_cohorts AS
WITH
    u AS (
        SELECT source_kind, source_id, cohort_date, count() AS new_users
        FROM {db}.users FINAL
        GROUP BY source_kind, source_id, cohort_date
    ),
    m AS (
        SELECT
            source_kind, source_id, cohort_date,
            uniqExactIf(user_id, kind = 'payment') AS payers,
            sumIf(value, kind = 'payment') AS revenue_iap,
            sumIf(value, kind = 'ad_unlock') AS revenue_iaa,
            -sumIf(value, kind = 'refund') AS refunds,
            sumIf(value, date <= cohort_date) AS revenue_d0,
            sumIf(value, date <= cohort_date + 1) AS revenue_d1,
            sumIf(value, date <= cohort_date + 3) AS revenue_d3,
            sumIf(value, date <= cohort_date + 7) AS revenue_d7,
            sum(value) AS revenue_total,
            sum(commission) AS commission
        FROM {db}.money FINAL
        GROUP BY source_kind, source_id, cohort_date
    ),
    s AS (
        SELECT 'campaign' AS source_kind, campaign_id AS source_id, date AS cohort_date, sum(value) AS spend
        FROM {db}.spend FINAL
        GROUP BY campaign_id, date
    ),
    k AS (
        SELECT source_kind, source_id, cohort_date FROM u
        UNION DISTINCT
        SELECT source_kind, source_id, cohort_date FROM s
    )
SELECT
    k.source_kind AS source_kind,
    k.source_id AS source_id,
    k.cohort_date AS cohort_date,
    s.spend AS spend,
    u.new_users AS new_users,
    m.payers AS payers,
    m.revenue_iap AS revenue_iap,
    m.revenue_iaa AS revenue_iaa,
    m.refunds AS refunds,
    m.revenue_d0 AS revenue_d0,
    m.revenue_d1 AS revenue_d1,
    m.revenue_d3 AS revenue_d3,
    m.revenue_d7 AS revenue_d7,
    m.revenue_total AS revenue_total,
    m.commission AS commission
FROM k
LEFT JOIN u ON u.source_kind = k.source_kind AND u.source_id = k.source_id AND u.cohort_date = k.cohort_date
LEFT JOIN m ON m.source_kind = k.source_kind AND m.source_id = k.source_id AND m.cohort_date = k.cohort_date
LEFT JOIN s ON s.source_kind = k.source_kind AND s.source_id = k.source_id AND s.cohort_date = k.cohort_date;

CREATE OR REPLACE VIEW {db}.commission_daily AS
SELECT
    creator_id,
    source_id AS plan_id,
    date,
    sumIf(value, kind = 'payment') AS gross,
    -sumIf(value, kind = 'refund') AS refunds,
    sum(value) AS net,
    sum(commission) AS commission
FROM {db}.money FINAL
WHERE source_kind = 'plan' AND creator_id != '' AND kind IN ('payment', 'refund')
GROUP BY creator_id, plan_id, date;
