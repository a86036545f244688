{#-
    Features at each training cutoff, labelled with what the customer spent in
    the label window after it. Same feature definition as scoring.
-#}
with

customer_days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

training_cutoffs as (

    select
        cutoff_rank,
        cutoff_date,
        label_window_end_date,
        label_window_days,
        horizon_days
    from {{ ref('int_training_cutoffs') }}

),

features as (

    {{ customer_features('customer_days', 'training_cutoffs') }}

),

labels as (

    select
        training_cutoffs.cutoff_date,
        customer_days.customer_id,
        sum(customer_days.net_spend) as label_net_spend,
        count(case when customer_days.is_purchase_day then 1 end) as label_purchase_days
    from customer_days
    inner join training_cutoffs
        on
            customer_days.transaction_date > training_cutoffs.cutoff_date
            and customer_days.transaction_date <= training_cutoffs.label_window_end_date
    group by training_cutoffs.cutoff_date, customer_days.customer_id

),

final as (

    select
        features.*,
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
            features.cutoff_date = labels.cutoff_date
            and features.customer_id = labels.customer_id

)

select * from final
