with

customer_predictions as (

    select
        as_of_date,
        horizon_days,
        model_version,
        expected_spend,
        {%- for column in quantile_columns() %}
            {{ column }},
        {%- endfor %}
        prob_purchase
    from {{ ref('customer_predictions') }}

),

model_registry as (

    select
        model_version,
        spend_model,
        calibration,
        seasonal_factor,
        seasonal_ratios,
        season
    from {{ ref('model_registry') }}

),

spend_models as (

    -- The same on every row of a version.
    select
        model_version,
        max(spend_model) as spend_model,
        max(calibration) as calibration,
        max(seasonal_factor) as seasonal_factor,
        max(seasonal_ratios) as seasonal_ratios,
        max(season) as season
    from model_registry
    group by model_version

),

runs as (

    select
        as_of_date,
        horizon_days,
        model_version,
        count(*) as customers,
        sum(expected_spend) as total_expected_spend,
        avg(expected_spend) as mean_expected_spend,
        percentile_cont(0.5) within group (order by expected_spend) as median_expected_spend,
        {%- for column in quantile_columns() %}
            avg({{ column }}) as mean_{{ column }},
        {%- endfor %}
        avg(prob_purchase) as mean_prob_purchase,
        sum(prob_purchase) as expected_buyers
    from customer_predictions
    group by as_of_date, horizon_days, model_version

),

final as (

    select
        runs.*,
        spend_models.spend_model,
        spend_models.calibration,
        spend_models.seasonal_factor,
        spend_models.seasonal_ratios,
        spend_models.season
    from runs
    left join spend_models on runs.model_version = spend_models.model_version

)

select * from final
