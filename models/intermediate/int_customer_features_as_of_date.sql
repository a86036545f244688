{#-
    Features of every customer as of as_of_date: the scoring input.
    as_of_date comes from the var when given, else from the data (staging has
    already rejected anything later than the run date, so the latest valid
    date is the right default).
-#}
{{ config(post_hook=[
    "{{ refuse_input_without_customers(this) }}",
    "{{ refuse_as_of_date_past_the_history(this) }}",
]) }}

{%- if date_var('as_of_date') %}
    {%- set as_of_date_expression = 'min(' ~ date_var('as_of_date') ~ ')' %}
{%- else %}
    {%- set as_of_date_expression = 'max(transaction_date)' %}
{%- endif %}

with

customer_days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

transactions as (

    select transaction_date from {{ ref('stg_transactions__transactions') }}

),

forecast_settings as (

    -- One row; min() keeps it one row when the date comes from the var. Read off the
    -- transactions, not the customer days: with the features their only reader, DuckDB
    -- streams the customer days into them instead of storing every one (50M rows:
    -- 56 s -> 48 s).
    select
        {{ as_of_date_expression }} as cutoff_date,
        {{ number_var('horizon_days', whole=true) }} as horizon_days
    from transactions

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
