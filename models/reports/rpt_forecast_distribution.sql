{#- Histogram of expected spend: 40 equal bins up to the 99th percentile, then one open bin. -#}
with

customer_predictions as (

    select expected_spend
    from {{ ref('customer_predictions') }}

),

bin_width as (

    select greatest(percentile_cont(0.99) within group (order by expected_spend) / 40, 0.01) as width
    from customer_predictions

),

binned as (

    select least(floor(customer_predictions.expected_spend / bin_width.width), 40) as bin_index
    from customer_predictions
    cross join bin_width

),

final as (

    select
        binned.bin_index * bin_width.width as bin_lower,
        case when binned.bin_index < 40 then (binned.bin_index + 1) * bin_width.width end as bin_upper,
        count(*) as customers
    from binned
    cross join bin_width
    group by binned.bin_index, bin_width.width

)

select * from final
