with

checked_rows as (

    select
        transaction_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        rejection_reason
    from {{ ref('stg_transactions__rows') }}

),

final as (

    select
        transaction_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        amount < 0 as is_refund
    from checked_rows
    where rejection_reason is null

)

select * from final
