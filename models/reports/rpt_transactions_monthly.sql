with

transactions as (

    select
        customer_id,
        transaction_date,
        amount
    from {{ ref('stg_transactions__transactions') }}

),

final as (

    select
        cast({{ dbt.date_trunc('month', 'transaction_date') }} as date) as month_start_date,
        count(*) as transaction_count,
        count(distinct customer_id) as customer_count,
        sum(amount) as revenue
    from transactions
    group by month_start_date

)

select * from final
