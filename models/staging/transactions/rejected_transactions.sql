with

checked_rows as (

    select
        source_file,
        source_row_number,
        customer_id_raw,
        transaction_date_raw,
        amount_raw,
        quantity_raw,
        transaction_id_raw,
        rejection_reason
    from {{ ref('stg_transactions__rows') }}

),

final as (

    select
        source_file,
        source_row_number,
        rejection_reason,
        customer_id_raw,
        transaction_date_raw,
        amount_raw,
        quantity_raw,
        transaction_id_raw
    from checked_rows
    where rejection_reason is not null

)

select * from final
