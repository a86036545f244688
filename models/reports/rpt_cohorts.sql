{#- Customers active in each month since their first purchase month, per cohort. -#}
with

customer_features as (

    -- A customer's first purchase is the features' (one definition of it); reading it
    -- there also builds this report after the features rather than ahead of them.
    select
        customer_id,
        first_purchase_date
    from {{ ref('int_customer_features_as_of_date') }}

),

purchases as (

    -- Straight from the transactions: a month with a purchase is all it needs, and
    -- the customer-day aggregate (one row per transaction, nearly) cost more memory
    -- than DuckDB's default limit at 100M transactions.
    select
        customer_id,
        transaction_date
    from {{ ref('stg_transactions__transactions') }}
    where amount > 0

),

purchase_months as (

    select distinct
        customer_id,
        cast({{ dbt.date_trunc('month', 'transaction_date') }} as date) as purchase_month
    from purchases

),

cohorts as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'first_purchase_date') }} as date) as cohort_month
    from customer_features
    where first_purchase_date is not null

),

activity as (

    select
        cohorts.cohort_month,
        {{ dbt.datediff('cohorts.cohort_month', 'purchase_months.purchase_month', 'month') }}
            as months_since_first_purchase,
        count(*) as active_customers
    from purchase_months
    inner join cohorts
        on purchase_months.customer_id = cohorts.customer_id
    group by cohorts.cohort_month, purchase_months.purchase_month

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_customers
    from cohorts
    group by cohort_month

),

final as (

    select
        activity.cohort_month,
        activity.months_since_first_purchase,
        activity.active_customers,
        cohort_sizes.cohort_customers
    from activity
    inner join cohort_sizes
        on activity.cohort_month = cohort_sizes.cohort_month

)

select * from final
