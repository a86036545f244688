with

checked_rows as (

    select
        transaction_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        is_kept_copy
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
    where is_kept_copy

)

select * from final
