{{ config(materialized='ephemeral') }}

{#-
    One row per customer and day with any valid transaction. Features at any
    cutoff are sums over these rows. Ephemeral on purpose: writing ~one row per
    transaction to disk costs more than recomputing it in each consumer.
-#}
with

transactions as (

    select
        customer_id,
        {{ customer_sample_key('customer_id') }} as customer_sample_key,
        transaction_date,
        amount,
        quantity
    from {{ ref('stg_transactions__transactions') }}

),

days as (

    select
        customer_id,
        customer_sample_key,
        transaction_date,
        {{ sum_to_millionths('amount') }} as net_spend,
        count(case when amount > 0 then 1 end) as order_count,
        {{ sum_to_millionths('case when amount > 0 then amount else 0 end') }} as order_value_sum,
        {{ sum_to_millionths('case when amount > 0 then amount * amount else 0 end') }}
            as order_value_sum_of_squares,
        max(case when amount > 0 then amount end) as order_value_max,
        count(case when amount < 0 then 1 end) as refund_count,
        {{ sum_to_millionths('case when amount < 0 then -amount else 0 end') }} as refund_amount,
        {{ sum_to_millionths('case when amount > 0 then quantity else 0 end') }} as quantity
    from transactions
    group by customer_id, customer_sample_key, transaction_date

),

final as (

    select
        customer_id,
        customer_sample_key,
        transaction_date,
        net_spend,
        order_count,
        order_value_sum,
        order_value_sum_of_squares,
        order_value_max,
        refund_count,
        refund_amount,
        quantity,
        order_count > 0 as is_purchase_day,
        case
            when order_count > 0
                then {{ dbt.datediff(
                    'lag(transaction_date) over (partition by customer_id, customer_sample_key,'
                    ~ ' order_count > 0 order by transaction_date)',
                    'transaction_date',
                    'day'
                ) }}
        end as days_since_previous_purchase_day
    from days

)

select * from final
