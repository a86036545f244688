{#-
    The BG/NBD inputs of every customer at each date a BTYD model is fitted
    at: each training cutoff and as_of_date. Above 500,000 customers at a
    date, a stable sample by a hash of the id: BG/NBD's four parameters are
    pinned down long before that, and the fit time grows with the customers.
    A table: its data tests read it as well as btyd_fits, and as a view each
    of them ranked every customer again (2-4 s each at 50M rows).
-#}
{{ config(materialized='table') }}

{%- set max_fit_customers = 500000 %}

with

training_examples as (

    select
        cutoff_date,
        customer_id,
        purchase_days,
        tenure_days,
        recency_days,
        repeat_purchase_day_value_mean
    from {{ ref('int_training_examples_labelled') }}

),

scoring_features as (

    select
        as_of_date,
        customer_id,
        purchase_days,
        tenure_days,
        recency_days,
        repeat_purchase_day_value_mean
    from {{ ref('int_customer_features_as_of_date') }}

),

customers_at_fit_dates as (

    -- Production and backtest cutoffs can share a date: one row per customer there.
    select distinct * from training_examples

    union all

    select * from scoring_features

),

ranked as (

    select
        *,
        count(*) over (partition by cutoff_date) as customers_at_cutoff,
        row_number() over (
            partition by cutoff_date
            order by {{ dbt.hash('customer_id') }}, customer_id
        ) as sample_rank
    from customers_at_fit_dates

),

final as (

    select
        cutoff_date,
        customer_id,
        purchase_days,
        tenure_days,
        recency_days,
        repeat_purchase_day_value_mean,
        customers_at_cutoff
    from ranked
    where sample_rank <= {{ max_fit_customers }}

)

select * from final
