{#-
    Cumulative gain: customers ranked by each model's expected spend on the
    backtest (highest first, ties by customer_id), and the share of all actual
    net spend the top 1%, 2%, ..., 100% of them made. A model that ranks well
    rises steeply; ranking at random follows the diagonal.
-#}
with

backtest_predictions as (

    select
        model,
        customer_id,
        expected_spend,
        actual_spend
    from {{ ref('backtest_predictions') }}

),

percentiles as (

    {{ integer_series(100) }}

),

ranked as (

    select
        model,
        actual_spend,
        row_number() over (
            partition by model order by expected_spend desc, customer_id asc
        ) as forecast_rank,
        count(*) over (partition by model) as customers,
        sum(actual_spend) over (partition by model) as total_actual
    from backtest_predictions

),

cumulative as (

    select
        model,
        forecast_rank,
        customers,
        total_actual,
        sum(actual_spend) over (
            partition by model
            order by forecast_rank
            rows between unbounded preceding and current row
        ) as actual_so_far
    from ranked

),

final as (

    select
        cumulative.model,
        percentiles.step as percentile,
        cumulative.forecast_rank as customers_targeted,
        cast(cumulative.forecast_rank as double) / cumulative.customers as customer_share,
        cumulative.actual_so_far / nullif(cumulative.total_actual, 0) as spend_share
    from cumulative
    inner join percentiles
        on cumulative.forecast_rank = ceil(percentiles.step * cumulative.customers / 100.0)

)

select * from final
