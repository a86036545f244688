-- Customers who bought often before but are unlikely to buy in the horizon:
-- candidates for a win-back campaign, most valuable first.
with

customer_predictions as (

    select
        customer_id,
        prob_purchase,
        expected_spend
    from {{ ref('customer_predictions') }}

),

features as (

    select
        customer_id,
        purchase_days,
        net_spend,
        recency_days
    from {{ ref('int_customer_features_as_of_date') }}

)

select
    features.customer_id,
    features.purchase_days,
    features.net_spend as past_net_spend,
    features.recency_days,
    customer_predictions.prob_purchase,
    customer_predictions.expected_spend
from features
inner join customer_predictions
    on features.customer_id = customer_predictions.customer_id
where
    features.purchase_days >= 3
    and customer_predictions.prob_purchase < 0.2
order by features.net_spend desc
limit 500
