{#-
    Cutoffs stepping back from an anchor date, for two purposes:
    - production: anchored at as_of_date, to train the model that scores today;
    - backtest: anchored at as_of_date - horizon, to train exactly as production
      does on the history before it, plus one backtest_holdout cutoff at that
      date whose label window (the last horizon before as_of_date) is the
      out-of-time truth the backtest forecast is judged against.
    A label window runs from the day after its cutoff to min(cutoff + horizon,
    anchor), so the most recent cutoffs have windows shorter than the horizon:
    that is how a history shorter than twice the horizon still yields examples.
-#}
{{ config(post_hook="{{ refuse_history_too_short_to_train(this, ref('int_customer_features_as_of_date')) }}") }}

{%- set step_back_days = '-steps.step * ' ~ number_var('training_cutoff_step_days', whole=true) %}

with

scoring_features as (

    select
        as_of_date,
        horizon_days,
        first_transaction_date
    from {{ ref('int_customer_features_as_of_date') }}

),

forecast_settings as (

    select
        max(as_of_date) as as_of_date,
        max(horizon_days) as horizon_days,
        min(first_transaction_date) as first_transaction_date
    from scoring_features

),

anchors as (

    select
        'production' as purpose,
        as_of_date as anchor_date,
        horizon_days,
        first_transaction_date
    from forecast_settings

    union all

    select
        'backtest' as purpose,
        cast({{ dbt.dateadd('day', '-horizon_days', 'as_of_date') }} as date) as anchor_date,
        horizon_days,
        first_transaction_date
    from forecast_settings

),

steps as (

    {{ integer_series(number_var('training_cutoffs', whole=true)) }}

),

training_candidates as (

    select
        anchors.purpose,
        steps.step as cutoff_rank,
        cast({{ dbt.dateadd('day', step_back_days, 'anchors.anchor_date') }} as date) as cutoff_date,
        anchors.anchor_date,
        anchors.horizon_days,
        anchors.first_transaction_date
    from steps
    cross join anchors

),

holdout_candidates as (

    select
        'backtest_holdout' as purpose,
        0 as cutoff_rank,
        cast({{ dbt.dateadd('day', '-horizon_days', 'as_of_date') }} as date) as cutoff_date,
        as_of_date as anchor_date,
        horizon_days,
        first_transaction_date
    from forecast_settings

),

windows as (

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        least(
            horizon_days,
            {{ dbt.datediff('cutoff_date', 'anchor_date', 'day') }}
        ) as label_window_days
    from training_candidates

    union all

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        horizon_days as label_window_days
    from holdout_candidates

),

final as (

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        cast({{ dbt.dateadd('day', 'label_window_days', 'cutoff_date') }} as date) as label_window_end_date,
        label_window_days,
        horizon_days
    from windows
    where
        label_window_days >= {{ number_var('min_label_window_days', whole=true) }}
        and {{ dbt.datediff('first_transaction_date', 'cutoff_date', 'day') }}
        >= {{ number_var('min_training_history_days', whole=true) }}

)

select * from final
