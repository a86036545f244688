{#- Customers whose first purchase falls within the last horizon before as_of_date. -#}
with

customer_predictions as (

    select
        customer_id,
        expected_spend,
        {%- for column in quantile_columns() %}
            {{ column }},
        {%- endfor %}
        prob_purchase
    from {{ ref('customer_predictions') }}

),

features as (

    select
        customer_id,
        as_of_date,
        horizon_days,
        first_purchase_date,
        purchase_days,
        net_spend
    from {{ ref('int_customer_features_as_of_date') }}

),

final as (

    select
        features.customer_id,
        features.as_of_date,
        features.first_purchase_date,
        features.purchase_days,
        features.net_spend as past_net_spend,
        customer_predictions.expected_spend,
        {%- for column in quantile_columns() %}
            customer_predictions.{{ column }},
        {%- endfor %}
        customer_predictions.prob_purchase
    from features
    inner join customer_predictions
        on features.customer_id = customer_predictions.customer_id
    where
        features.first_purchase_date
        > cast({{ dbt.dateadd('day', '-features.horizon_days', 'features.as_of_date') }} as date)

)

select * from final
