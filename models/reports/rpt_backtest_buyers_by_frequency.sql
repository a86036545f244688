{#-
    Expected against actual buyers on the backtest, per model and per bucket of
    how many distinct days the customer had bought on before the backtest
    date: does a model get one-time buyers and regulars alike right? Expected
    buyers are the sum of prob_purchase over the bucket's customers.
-#}
{%- set frequency_bounds = [0, 1, 2, 3, 4, 6, 10, 20] %}

with

backtest_predictions as (

    select
        model,
        customer_id,
        backtest_as_of_date,
        prob_purchase,
        has_purchase
    from {{ ref('backtest_predictions') }}

),

backtest_customers as (

    select
        customer_id,
        cutoff_date,
        purchase_days
    from {{ ref('int_training_examples_labelled') }}
    where purpose = 'backtest_holdout'

),

bucketed as (

    select
        backtest_predictions.model,
        backtest_predictions.prob_purchase,
        {{ bucket_from('backtest_customers.purchase_days', frequency_bounds) }}
            as purchase_days_from,
        {{ bucket_label('backtest_customers.purchase_days', frequency_bounds) }}
            as purchase_days_bucket,
        cast(
            case when backtest_predictions.has_purchase then 1 else 0 end
            as {{ dbt.type_float() }}
        ) as purchased
    from backtest_predictions
    inner join backtest_customers
        on
            backtest_predictions.customer_id = backtest_customers.customer_id
            and backtest_predictions.backtest_as_of_date = backtest_customers.cutoff_date

),

final as (

    select
        model,
        purchase_days_from,
        purchase_days_bucket,
        count(*) as customers,
        sum(prob_purchase) as expected_buyers,
        sum(purchased) as actual_buyers
    from bucketed
    group by model, purchase_days_from, purchase_days_bucket

)

select * from final
