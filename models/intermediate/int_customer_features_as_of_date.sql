{#-
    Features of every customer as of as_of_date: the scoring input.
    as_of_date comes from the var when given, else from the data (staging has
    already rejected anything later than the run date, so the latest valid
    date is the right default).
-#}
{%- if var('as_of_date') %}
    {%- set as_of_date_expression = "min(cast('" ~ var('as_of_date') ~ "' as date))" %}
{%- else %}
    {%- set as_of_date_expression = 'max(transaction_date)' %}
{%- endif %}

with

customer_days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

forecast_settings as (

    -- One row; min() keeps it one row when the date comes from the var.
    select
        {{ as_of_date_expression }} as cutoff_date,
        {{ var('horizon_days') }} as horizon_days
    from customer_days

),

features as (

    {{ customer_features('customer_days', 'forecast_settings', cutoff_alias='as_of_date') }}

),

final as (

    select
        features.*,
        forecast_settings.horizon_days
    from features
    cross join forecast_settings

)

select * from final
