-- How each customer's forecast moved between the two most recent scoring runs
-- in customer_predictions_history (largest moves first).
with

history as (

    select
        customer_id,
        as_of_date,
        model_version,
        scored_at,
        expected_spend,
        prob_purchase
    from {{ ref('customer_predictions_history') }}

),

runs as (

    select
        as_of_date,
        model_version,
        max(scored_at) as scored_at,
        row_number() over (order by max(scored_at) desc) as run_rank
    from history
    group by as_of_date, model_version

),

latest as (

    select history.*
    from history
    inner join runs
        on
            history.as_of_date = runs.as_of_date
            and history.model_version = runs.model_version
    where runs.run_rank = 1

),

previous as (

    select history.*
    from history
    inner join runs
        on
            history.as_of_date = runs.as_of_date
            and history.model_version = runs.model_version
    where runs.run_rank = 2

)

select
    latest.customer_id,
    previous.as_of_date as previous_as_of_date,
    latest.as_of_date,
    previous.expected_spend as previous_expected_spend,
    latest.expected_spend,
    latest.expected_spend - previous.expected_spend as expected_spend_change,
    latest.prob_purchase - previous.prob_purchase as prob_purchase_change
from latest
left join previous
    on latest.customer_id = previous.customer_id
order by abs(coalesce(latest.expected_spend - previous.expected_spend, 0)) desc
