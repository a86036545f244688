with

purchases as (

    select amount
    from {{ ref('stg_transactions__transactions') }}
    where amount > 0

),

final as (

    {{ equal_width_histogram('purchases', 'amount', 'orders') }}

)

select * from final
