{#-
    Is prob_purchase calibrated? Predicted against observed purchase rate in ten
    equal-width probability bins, per model and baseline of the backtest: bin b
    holds probabilities in [(b - 1) / 10, b / 10), the last one 1.0 too. Every bin
    is listed, an empty one with 0 customers, so the table has the same shape on
    every run. With no backtest (short history) one row per model says why.
-#}
with

backtest_predictions as (

    select
        model,
        prob_purchase,
        has_purchase
    from {{ ref('backtest_predictions') }}

),

backtest_metrics as (

    select
        model,
        status,
        status_reason
    from {{ ref('rpt_backtest_metrics') }}

),

bins as (

    {{ integer_series(10) }}

),

binned as (

    select
        model,
        prob_purchase,
        cast(case when has_purchase then 1 else 0 end as {{ dbt.type_float() }}) as purchased,
        least(cast(floor(prob_purchase * 10) as {{ dbt.type_int() }}) + 1, 10) as bin
    from backtest_predictions

),

per_bin as (

    select
        model,
        bin,
        count(*) as customers,
        avg(prob_purchase) as mean_prob_purchase,
        avg(purchased) as observed_purchase_rate
    from binned
    group by model, bin

),

final as (

    select
        backtest_metrics.model,
        backtest_metrics.status,
        backtest_metrics.status_reason,
        bins.step as bin,
        per_bin.mean_prob_purchase,
        per_bin.observed_purchase_rate,
        (bins.step - 1) / 10.0 as prob_from,
        bins.step / 10.0 as prob_to,
        coalesce(per_bin.customers, 0) as customers
    from backtest_metrics
    left join bins
        on backtest_metrics.status = 'ok'
    left join per_bin
        on
            backtest_metrics.model = per_bin.model
            and bins.step = per_bin.bin

)

select * from final
