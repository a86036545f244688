{#-
    Cutoffs stepping back from an anchor date, for four purposes:
    - production: anchored at as_of_date, to train the model that scores today;
    - backtest: anchored at as_of_date - horizon, to train exactly as production
      does on the history before it, plus one backtest_holdout cutoff at that
      date whose label window (the last horizon before as_of_date) is the
      out-of-time truth the backtest forecast is judged against;
    - calibration, for an anchor whose own cutoffs hold no window as long as
      the horizon after two earlier ones (clv.training.time_split), so that its
      quantile levels cannot be calibrated on a validation window: the same
      cutoffs anchored calibration_window_days earlier (<anchor>_calibration),
      and a holdout cutoff there whose label window runs to the anchor
      (<anchor>_calibration_holdout). The whole model is refitted on the
      former, and each level read off its PITs on the latter;
    - season (<anchor>_season): the same calendar window as the anchor's
      horizon one, two, ... var season_years years before it, each a cutoff
      whose label window is the whole horizon, so that actual spend there can
      be set against BTYD's forecast made at its start (clv.season); and
      <anchor>_season_year, the same cutoffs with a window of the 365 days
      after them. Only with at least a horizon of history before the cutoff:
      BTYD fitted on less history than the window it forecasts is wrong by
      its own youth, and that error would be read as season. None when the
      var seasonal_level is off or the history is too short.
    A label window runs from the day after its cutoff to min(cutoff + horizon,
    anchor), so the most recent cutoffs have windows shorter than the horizon:
    that is how a history shorter than twice the horizon still yields examples.
-#}
{{ config(post_hook="{{ refuse_history_too_short_to_train(this, ref('int_customer_features_as_of_date')) }}") }}

{%- set step_back_days = '-steps.step * ' ~ number_var('training_cutoff_step_days', whole=true) %}
{%- set calibration_days = 'least(horizon_days, ' ~ number_var('calibration_window_days', whole=true) ~ ')' %}
{#- A horizon shorter than var min_label_window_days (a week ahead) takes windows of its own length. -#}
{%- set kept_cutoff -%}
    label_window_days >= least(horizon_days, {{ number_var('min_label_window_days', whole=true) }})
    and {{ dbt.datediff('first_transaction_date', 'cutoff_date', 'day') }}
    >= {{ number_var('min_training_history_days', whole=true) }}
{%- endset %}

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

anchored_cutoffs as (

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

anchored_windows as (

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
    from anchored_cutoffs

),

kept_anchored_windows as (

    select
        purpose,
        cutoff_date,
        cast({{ dbt.dateadd('day', 'label_window_days', 'cutoff_date') }} as date) as label_window_end_date,
        label_window_days >= horizon_days as spans_horizon
    from anchored_windows
    where {{ kept_cutoff }}

),

validation_cutoffs as (

    select
        purpose,
        max(cutoff_date) as validation_cutoff_date
    from kept_anchored_windows
    where spans_horizon
    group by purpose

),

anchors_calibrated_on_validation as (

    -- As clv.training.time_split: a full-horizon validation window after at
    -- least two training windows that end by its cutoff.
    select kept_anchored_windows.purpose
    from kept_anchored_windows
    inner join validation_cutoffs
        on
            kept_anchored_windows.purpose = validation_cutoffs.purpose
            and kept_anchored_windows.label_window_end_date
            <= validation_cutoffs.validation_cutoff_date
    group by kept_anchored_windows.purpose
    having count(distinct kept_anchored_windows.cutoff_date) >= 2

),

calibration_anchors as (

    select
        anchors.purpose,
        anchors.anchor_date,
        cast({{ dbt.dateadd('day', '-' ~ calibration_days, 'anchors.anchor_date') }} as date)
            as calibration_anchor_date,
        anchors.horizon_days,
        anchors.first_transaction_date
    from anchors
    where anchors.purpose not in (
        select anchors_calibrated_on_validation.purpose
        from anchors_calibrated_on_validation
    )

),

calibration_windows as (

    select
        concat(calibration_anchors.purpose, '_calibration') as purpose,
        steps.step as cutoff_rank,
        cast(
            {{ dbt.dateadd('day', step_back_days, 'calibration_anchors.calibration_anchor_date') }}
            as date
        ) as cutoff_date,
        calibration_anchors.horizon_days,
        calibration_anchors.first_transaction_date,
        least(
            calibration_anchors.horizon_days,
            steps.step * {{ number_var('training_cutoff_step_days', whole=true) }}
        ) as label_window_days
    from steps
    cross join calibration_anchors

),

season_steps as (

    {{ integer_series(number_var('season_years', whole=true)) }}

),

seasonal_cutoffs as (

    select
        anchors.purpose,
        season_steps.step as cutoff_rank,
        cast({{ dbt.dateadd('month', '-12 * season_steps.step', 'anchors.anchor_date') }} as date)
            as cutoff_date,
        anchors.anchor_date,
        anchors.horizon_days,
        anchors.first_transaction_date
    from season_steps
    cross join anchors
    where {{ 'true' if var('seasonal_level') | as_bool else 'false' }}

),

seasonal_windows as (

    -- The horizon's window in an earlier year, and the whole year after its start:
    -- BTYD's error over a year, with every season in it, tells its own drift from
    -- the season (clv.season).
    select
        concat(purpose, '_season') as purpose,
        cutoff_rank,
        cutoff_date,
        anchor_date,
        horizon_days,
        first_transaction_date,
        horizon_days as label_window_days
    from seasonal_cutoffs

    union all

    select
        concat(purpose, '_season_year') as purpose,
        cutoff_rank,
        cutoff_date,
        anchor_date,
        horizon_days,
        first_transaction_date,
        365 as label_window_days
    from seasonal_cutoffs

),

holdouts as (

    select
        'backtest_holdout' as purpose,
        0 as cutoff_rank,
        cast({{ dbt.dateadd('day', '-horizon_days', 'as_of_date') }} as date) as cutoff_date,
        horizon_days,
        first_transaction_date,
        horizon_days as label_window_days
    from forecast_settings

    union all

    select
        concat(purpose, '_calibration_holdout') as purpose,
        0 as cutoff_rank,
        calibration_anchor_date as cutoff_date,
        horizon_days,
        first_transaction_date,
        {{ dbt.datediff('calibration_anchor_date', 'anchor_date', 'day') }}
            as label_window_days
    from calibration_anchors

),

windows as (

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        label_window_days
    from anchored_windows

    union all

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        label_window_days
    from calibration_windows

    union all

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        label_window_days
    from holdouts

    union all

    -- A window that ends after its anchor would overlap the horizon it informs.
    -- A BTYD fitted on less than a horizon of history is wrong by its own youth,
    -- which would be read as season: on CDNOW's single cohort (13 months, 150
    -- days ahead) the fit on its first month forecast the same 150 days a year
    -- earlier at 1.6 times what happened, and that x0.62 applied as season put
    -- the total 38% low where BTYD's was 1% low.
    select
        purpose,
        cutoff_rank,
        cutoff_date,
        horizon_days,
        first_transaction_date,
        label_window_days
    from seasonal_windows
    where
        {{ dbt.datediff('cutoff_date', 'anchor_date', 'day') }}
        >= label_window_days
        and {{ dbt.datediff('first_transaction_date', 'cutoff_date', 'day') }}
        >= horizon_days

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
    where {{ kept_cutoff }}

)

select * from final
