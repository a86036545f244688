with

customer_predictions as (

    select expected_spend
    from {{ ref('customer_predictions') }}

),

final as (

    {{ equal_width_histogram('customer_predictions', 'expected_spend', 'customers') }}

)

select * from final
