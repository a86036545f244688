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
        unit_price_raw,
        order_id_raw,
        rejection_reason
    from {{ ref('stg_transactions__rows') }}

),

unreadable_rows as (

    select
        source_file,
        source_line_number,
        rejection_reason,
        raw_line
    from {{ ref('stg_transactions__unreadable_rows') }}

),

final as (

    select
        source_file,
        source_row_number,
        cast(null as bigint) as source_line_number,
        rejection_reason,
        customer_id_raw,
        transaction_date_raw,
        amount_raw,
        quantity_raw,
        transaction_id_raw,
        unit_price_raw,
        order_id_raw,
        cast(null as {{ dbt.type_string() }}) as raw_line
    from checked_rows
    where rejection_reason is not null

    union all

    select
        source_file,
        cast(null as bigint) as source_row_number,
        source_line_number,
        rejection_reason,
        cast(null as {{ dbt.type_string() }}) as customer_id_raw,
        cast(null as {{ dbt.type_string() }}) as transaction_date_raw,
        cast(null as {{ dbt.type_string() }}) as amount_raw,
        cast(null as {{ dbt.type_string() }}) as quantity_raw,
        cast(null as {{ dbt.type_string() }}) as transaction_id_raw,
        cast(null as {{ dbt.type_string() }}) as unit_price_raw,
        cast(null as {{ dbt.type_string() }}) as order_id_raw,
        raw_line
    from unreadable_rows

)

select * from final
