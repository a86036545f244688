with

customer_predictions as (

    select
        customer_id,
        expected_spend,
        prob_purchase
    from {{ ref('customer_predictions') }}

),

ranked as (

    select
        customer_id,
        expected_spend,
        prob_purchase,
        ntile(10) over (order by expected_spend desc) as value_tier
    from customer_predictions

),

tiers as (

    select
        value_tier,
        count(*) as customers,
        avg(expected_spend) as mean_expected_spend,
        min(expected_spend) as min_expected_spend,
        max(expected_spend) as max_expected_spend,
        sum(expected_spend) as total_expected_spend,
        avg(prob_purchase) as mean_prob_purchase
    from ranked
    group by value_tier

),

final as (

    select
        value_tier,
        customers,
        mean_expected_spend,
        min_expected_spend,
        max_expected_spend,
        total_expected_spend,
        mean_prob_purchase,
        total_expected_spend / nullif(sum(total_expected_spend) over (), 0) as share_of_total
    from tiers

)

select * from final
