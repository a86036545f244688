with

model_registry as (

    select
        model_version,
        target,
        best_iteration,
        calibrated_levels,
        validation_metric_name,
        validation_metric,
        training_rows,
        validation_rows,
        validation_cutoff,
        as_of_date,
        horizon_days,
        trained_at
    from {{ ref('model_registry') }}

),

final as (

    select
        model_version,
        target,
        as_of_date,
        horizon_days,
        trained_at,
        training_rows,
        validation_rows,
        validation_cutoff,
        best_iteration,
        calibrated_levels,
        validation_metric_name,
        validation_metric,
        model_version = max(model_version) over () as is_latest
    from model_registry

)

select * from final
