{#-
    The forecast's purchase probability by frequency and recency, the two
    things BTYD models read most: mean prob_purchase (and expected spend) of
    the customers in each bucket of distinct purchase days and of days since
    their last purchase at as_of_date. Customers who never bought (only
    refunds) have no recency and form the bucket `no purchase`.
-#}
{%- set frequency_bounds = [0, 1, 2, 3, 4, 6, 10, 20] %}
{%- set recency_bounds = [0, 30, 60, 90, 180, 365, 730] %}

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
        recency_days
    from {{ ref('int_customer_features_as_of_date') }}

),

bucketed as (

    select
        customer_predictions.prob_purchase,
        customer_predictions.expected_spend,
        {{ bucket_from('features.purchase_days', frequency_bounds) }} as purchase_days_from,
        {{ bucket_label('features.purchase_days', frequency_bounds) }} as purchase_days_bucket,
        coalesce({{ bucket_from('features.recency_days', recency_bounds) }}, -1)
            as recency_days_from,
        coalesce({{ bucket_label('features.recency_days', recency_bounds) }}, 'no purchase')
            as recency_days_bucket
    from customer_predictions
    inner join features
        on customer_predictions.customer_id = features.customer_id

),

final as (

    select
        purchase_days_from,
        purchase_days_bucket,
        recency_days_from,
        recency_days_bucket,
        count(*) as customers,
        avg(prob_purchase) as mean_prob_purchase,
        avg(expected_spend) as mean_expected_spend
    from bucketed
    group by purchase_days_from, purchase_days_bucket, recency_days_from, recency_days_bucket

)

select * from final
