with

customer_predictions as (

    select
        customer_id,
        as_of_date,
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
        net_spend,
        purchase_days,
        recency_days
    from {{ ref('int_customer_features_as_of_date') }}

),

final as (

    select
        customer_predictions.customer_id,
        customer_predictions.as_of_date,
        customer_predictions.expected_spend,
        {%- for column in quantile_columns() %}
            customer_predictions.{{ column }},
        {%- endfor %}
        customer_predictions.prob_purchase,
        features.net_spend as past_net_spend,
        features.purchase_days as past_purchase_days,
        features.recency_days,
        row_number() over (
            order by customer_predictions.expected_spend desc, customer_predictions.customer_id asc
        ) as value_rank
    from customer_predictions
    inner join features
        on customer_predictions.customer_id = features.customer_id

)

select * from final
where value_rank <= {{ number_var('report_top_customers', whole=true) }}
