-- High forecast value but fewer purchase days in the last 90 days than the
-- customer's own average pace over the past year: worth a call.
with

customer_predictions as (

    select
        customer_id,
        expected_spend,
        spend_p90
    from {{ ref('customer_predictions') }}

),

features as (

    select
        customer_id,
        purchase_days_last_90d,
        purchase_days_last_365d,
        net_spend_last_90d,
        net_spend_last_365d
    from {{ ref('int_customer_features_as_of_date') }}

),

value_tiers as (

    select
        customer_id,
        ntile(10) over (order by expected_spend desc) as value_tier
    from customer_predictions

)

select
    features.customer_id,
    customer_predictions.expected_spend,
    customer_predictions.spend_p90,
    features.purchase_days_last_90d,
    features.net_spend_last_90d,
    features.net_spend_last_365d,
    features.purchase_days_last_365d / 4.0 as quarterly_pace_last_year
from features
inner join customer_predictions
    on features.customer_id = customer_predictions.customer_id
inner join value_tiers
    on features.customer_id = value_tiers.customer_id
where
    value_tiers.value_tier = 1
    and features.purchase_days_last_90d < features.purchase_days_last_365d / 4.0
order by customer_predictions.expected_spend desc
