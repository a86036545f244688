{#-
    One row per purchase. With var order_id_column the rows of the file are the
    lines of orders, and an order is the purchase: its lines are summed here (a
    documented exception to "no aggregation in staging": everything downstream
    reads purchases, and an order is what a customer bought). A table then, since
    the sum is worth doing once; otherwise a view that filters the valid rows.
-#}
{%- set order_lines = 'true' if var('order_id_column') else 'false' %}
{{ config(materialized='table' if var('order_id_column') else 'view') }}

with

checked_rows as (

    select
        transaction_id,
        order_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        rejection_reason
    from {{ ref('stg_transactions__rows') }}

),

valid_rows as (

    select *
    from checked_rows
    where rejection_reason is null

),

row_purchases as (

    select
        transaction_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        cast(1 as bigint) as line_count
    from valid_rows
    where not {{ order_lines }}

),

order_purchases as (

    -- stg_transactions__rows quarantines an order seen with two customers or on
    -- two days, so each order here has one of each.
    select
        order_id as transaction_id,
        min(customer_id) as customer_id,
        min(transaction_at) as transaction_at,
        min(transaction_date) as transaction_date,
        {{ sum_to_millionths('amount') }} as amount,
        {{ sum_to_millionths('quantity') }} as quantity,
        count(*) as line_count
    from valid_rows
    where {{ order_lines }}
    group by order_id

),

purchases as (

    select * from row_purchases
    union all
    select * from order_purchases

),

final as (

    select
        transaction_id,
        customer_id,
        transaction_at,
        transaction_date,
        amount,
        quantity,
        line_count,
        amount < 0 as is_refund
    from purchases

)

select * from final
