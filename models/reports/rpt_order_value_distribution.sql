{#- Histogram of purchase values: 40 equal bins up to the 99th percentile, then one open bin. -#}
with

purchases as (

    select amount
    from {{ ref('stg_transactions__transactions') }}
    where amount > 0

),

bin_width as (

    select percentile_cont(0.99) within group (order by amount) / 40 as width
    from purchases

),

binned as (

    select least(floor(purchases.amount / bin_width.width), 40) as bin_index
    from purchases
    cross join bin_width

),

final as (

    select
        binned.bin_index * bin_width.width as bin_lower,
        case when binned.bin_index < 40 then (binned.bin_index + 1) * bin_width.width end as bin_upper,
        count(*) as orders
    from binned
    cross join bin_width
    group by binned.bin_index, bin_width.width

)

select * from final
