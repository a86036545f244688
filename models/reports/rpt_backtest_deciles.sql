{#-
    Mean forecast vs mean actual per forecast decile, per model and baseline.
    With no backtest (short history) one row per model says why. The project's one
    definition of a decile: customers sorted by forecast, highest first, ties by
    customer id; position k (0-based) of n goes to decile floor(10 k / n) + 1, so
    decile sizes differ by at most one and rerunning gives the same deciles.
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

backtest_metrics as (

    select
        model,
        status,
        status_reason
    from {{ ref('rpt_backtest_metrics') }}

),

ranked as (

    select
        model,
        expected_spend,
        actual_spend,
        cast(floor(
            10.0 * (row_number() over (
                partition by model order by expected_spend desc, customer_id asc
            ) - 1)
            / count(*) over (partition by model)
        ) as {{ dbt.type_int() }}) + 1 as decile
    from backtest_predictions

),

deciles as (

    select
        model,
        decile,
        count(*) as customers,
        avg(expected_spend) as mean_forecast,
        avg(actual_spend) as mean_actual,
        sum(expected_spend) as total_forecast,
        sum(actual_spend) as total_actual
    from ranked
    group by model, decile

),

final as (

    select
        backtest_metrics.model,
        backtest_metrics.status,
        backtest_metrics.status_reason,
        deciles.decile,
        deciles.customers,
        deciles.mean_forecast,
        deciles.mean_actual,
        deciles.total_forecast,
        deciles.total_actual
    from backtest_metrics
    left join deciles
        on backtest_metrics.model = deciles.model

)

select * from final
