{#-
    Features at each cutoff of int_training_cutoffs (production, backtest and
    backtest holdout), labelled with what the customer spent in the label
    window after it. Same feature definition as scoring. Above var
    max_training_rows examples, a stable sample of whole customers.
-#}
{{ config(post_hook="{{ refuse_training_without_buyers(this) }}") }}
{%- set sample_share = training_sample_share(
    ref('int_customer_features_as_of_date'), ref('int_training_cutoffs')
) %}

with

customer_days as (

    select * from {{ ref('int_customer_days_aggregated') }}
    where {{ customer_in_sample('customer_sample_key', sample_share) }}

),

training_cutoffs as (

    select
        purpose,
        cutoff_rank,
        cutoff_date,
        label_window_end_date,
        label_window_days,
        horizon_days
    from {{ ref('int_training_cutoffs') }}

),

feature_cutoffs as (

    -- Production and backtest cutoffs can fall on the same date: featurise it once.
    select distinct cutoff_date
    from training_cutoffs

),

features as (

    {{ customer_features('customer_days', 'feature_cutoffs') }}

),

labels as (

    select
        training_cutoffs.purpose,
        training_cutoffs.cutoff_date,
        customer_days.customer_id,
        {{ sum_to_millionths('customer_days.net_spend') }} as label_net_spend,
        count(case when customer_days.is_purchase_day then 1 end) as label_purchase_days
    from customer_days
    inner join training_cutoffs
        on
            customer_days.transaction_date > training_cutoffs.cutoff_date
            and customer_days.transaction_date <= training_cutoffs.label_window_end_date
    group by training_cutoffs.purpose, training_cutoffs.cutoff_date, customer_days.customer_id

),

final as (

    select
        features.*,
        training_cutoffs.purpose,
        training_cutoffs.cutoff_rank,
        training_cutoffs.label_window_end_date,
        training_cutoffs.label_window_days,
        training_cutoffs.horizon_days,
        coalesce(labels.label_net_spend, 0) as label_net_spend,
        coalesce(labels.label_net_spend, 0) * training_cutoffs.horizon_days
        / training_cutoffs.label_window_days as label_net_spend_per_horizon,
        coalesce(labels.label_purchase_days, 0) > 0 as label_has_purchase
    from features
    inner join training_cutoffs
        on features.cutoff_date = training_cutoffs.cutoff_date
    left join labels
        on
            training_cutoffs.purpose = labels.purpose
            and features.cutoff_date = labels.cutoff_date
            and features.customer_id = labels.customer_id

)

select * from final
