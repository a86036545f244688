with

transactions as (

    select
        customer_id,
        transaction_date,
        amount
    from {{ ref('stg_transactions__transactions') }}

),

data_span as (

    select
        min(transaction_date) as first_date,
        max(transaction_date) as last_date
    from transactions

),

monthly as (

    select
        cast({{ dbt.date_trunc('month', 'transaction_date') }} as date) as month_start_date,
        count(*) as transaction_count,
        count(distinct customer_id) as customer_count,
        sum(amount) as revenue
    from transactions
    group by month_start_date

),

final as (

    select
        monthly.month_start_date,
        monthly.transaction_count,
        monthly.customer_count,
        monthly.revenue,
        -- The data starts after the month's first day or ends before its last.
        (
            data_span.first_date > monthly.month_start_date
            or data_span.last_date < cast(
                {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'monthly.month_start_date')) }}
                as date
            )
        ) as is_partial_month
    from monthly
    cross join data_span

)

select * from final
