{#- Input rows (readable or not): raw, valid and rejected by reason; raw = valid + rejected. -#}
with

checked_rows as (

    select rejection_reason
    from {{ ref('stg_transactions__rows') }}

),

unreadable_rows as (

    select rejection_reason
    from {{ ref('stg_transactions__unreadable_rows') }}

),

input_rows as (

    select rejection_reason from checked_rows
    union all
    select rejection_reason from unreadable_rows

),

final as (

    select
        'raw' as category,
        cast(null as {{ dbt.type_string() }}) as rejection_reason,
        count(*) as row_count
    from input_rows

    union all

    select
        'valid' as category,
        cast(null as {{ dbt.type_string() }}) as rejection_reason,
        count(*) as row_count
    from input_rows
    where rejection_reason is null

    union all

    select
        'rejected' as category,
        rejection_reason,
        count(*) as row_count
    from input_rows
    where rejection_reason is not null
    group by rejection_reason

)

select * from final
