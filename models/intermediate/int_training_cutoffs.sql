{#-
    Cutoffs stepping back from as_of_date. A label window runs from the day
    after its cutoff to min(cutoff + horizon, as_of_date), so the most recent
    cutoffs have windows shorter than the horizon: that is how a history
    shorter than twice the horizon still yields training examples.
-#}
{%- set step_back_days = '-steps.step * ' ~ var('training_cutoff_step_days') %}

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

steps as (

    {{ integer_series(var('training_cutoffs')) }}

),

candidates as (

    select
        steps.step as cutoff_rank,
        cast(
            {{ dbt.dateadd('day', step_back_days, 'forecast_settings.as_of_date') }} as date
        ) as cutoff_date,
        forecast_settings.as_of_date,
        forecast_settings.horizon_days,
        forecast_settings.first_transaction_date
    from steps
    cross join forecast_settings

),

windows as (

    select
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        least(
            horizon_days,
            {{ dbt.datediff('cutoff_date', 'as_of_date', 'day') }}
        ) as label_window_days
    from candidates

),

final as (

    select
        cutoff_rank,
        cutoff_date,
        cast({{ dbt.dateadd('day', 'label_window_days', 'cutoff_date') }} as date) as label_window_end_date,
        label_window_days,
        horizon_days
    from windows
    where
        label_window_days >= {{ var('min_label_window_days') }}
        and {{ dbt.datediff('first_transaction_date', 'cutoff_date', 'day') }}
        >= {{ var('min_training_history_days') }}

)

select * from final
