{#
    The one definition of a customer's features as of a cutoff date.

    customer_days: a relation or CTE shaped like int_customer_days_aggregated.
    cutoffs:       a relation or CTE with a column cutoff_date (one row per cutoff).
    cutoff_alias:  what to call cutoff_date in the output.

    Returns one row per (cutoff_date, customer_id) for every customer with a
    valid transaction on or before the cutoff. Only days on or before the
    cutoff are read: that join condition is what makes it point-in-time.
#}
{% macro customer_features(customer_days, cutoffs, cutoff_alias='cutoff_date') %}
    {%- set windows = [30, 90, 180, 365] %}
    select
        cutoffs.cutoff_date as {{ cutoff_alias }},
        customer_days.customer_id,
        min(customer_days.transaction_date) as first_transaction_date,
        min(case when customer_days.is_purchase_day then customer_days.transaction_date end)
            as first_purchase_date,
        max(case when customer_days.is_purchase_day then customer_days.transaction_date end)
            as last_purchase_date,
        {{ dbt.datediff('min(customer_days.transaction_date)', 'cutoffs.cutoff_date', 'day') }}
            as tenure_days,
        {{ dbt.datediff(
            'max(case when customer_days.is_purchase_day then customer_days.transaction_date end)',
            'cutoffs.cutoff_date',
            'day'
        ) }} as recency_days,
        count(case when customer_days.is_purchase_day then 1 end) as purchase_days,
        cast(sum(customer_days.order_count) as bigint) as order_count,
        {{ sum_to_millionths('customer_days.net_spend') }} as net_spend,
        {{ sum_to_millionths('customer_days.order_value_sum') }}
        / nullif(sum(customer_days.order_count), 0) as order_value_mean,
        {{ std_from_sums(
            sum_to_millionths('customer_days.order_value_sum'),
            sum_to_millionths('customer_days.order_value_sum_of_squares'),
            'sum(customer_days.order_count)'
        ) }} as order_value_std,
        max(customer_days.order_value_max) as order_value_max,
        -- A purchase day with a previous purchase day is a repeat purchase day.
        {{ sum_to_millionths(
            'case when customer_days.days_since_previous_purchase_day is not null'
            ~ ' then customer_days.order_value_sum end'
        ) }}
        / nullif(count(customer_days.days_since_previous_purchase_day), 0)
            as repeat_purchase_day_value_mean,
        avg(customer_days.days_since_previous_purchase_day) as purchase_gap_mean_days,
        -- From whole-day sums, exact on every engine: stddev_samp's running update
        -- of doubles follows the order the rows come in.
        {{ std_from_sums(
            'cast(sum(customer_days.days_since_previous_purchase_day) as double)',
            'cast(sum(customer_days.days_since_previous_purchase_day'
            ~ ' * customer_days.days_since_previous_purchase_day) as double)',
            'count(customer_days.days_since_previous_purchase_day)'
        ) }} as purchase_gap_std_days,
        {%- for days in windows %}
        {{ sum_to_millionths(
            'case when customer_days.transaction_date > '
            ~ dbt.dateadd('day', -days, 'cutoffs.cutoff_date')
            ~ ' then customer_days.net_spend else 0 end'
        ) }} as net_spend_last_{{ days }}d,
        count(
            case
                when customer_days.is_purchase_day
                    and customer_days.transaction_date > {{ dbt.dateadd('day', -days, 'cutoffs.cutoff_date') }}
                    then 1
            end
        ) as purchase_days_last_{{ days }}d,
        {%- endfor %}
        cast(sum(customer_days.refund_count) as bigint) as refund_count,
        {{ sum_to_millionths('customer_days.refund_amount') }} as refund_amount,
        {{ sum_to_millionths('customer_days.quantity') }} as quantity
    from {{ customer_days }} as customer_days
    inner join {{ cutoffs }} as cutoffs
        on customer_days.transaction_date <= cutoffs.cutoff_date
    group by cutoffs.cutoff_date, customer_days.customer_id
{% endmacro %}


{#- The sample standard deviation of n values from their sum and sum of squares
    (null below two values): a function of the sums alone, so as exact and as
    order-free as they are. -#}
{% macro std_from_sums(total, sum_of_squares, n) %}
    case
        when {{ n }} > 1
            then sqrt(greatest(
                ({{ sum_of_squares }} - {{ total }} * {{ total }} / {{ n }}) / ({{ n }} - 1),
                0
            ))
    end
{%- endmacro %}
