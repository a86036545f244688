{#
    Histogram of `value` from `relation`: `bins` equal bins from 0 up to the
    99th percentile, then one open-ended bin for the long tail, so a few huge
    values cannot squash the rest into one bar. Columns: bin_lower, bin_upper
    (null for the open bin) and `count_alias`.
#}
{% macro equal_width_histogram(relation, value, count_alias, bins=40) %}
    with

    percentile_99 as (

        {{ percentile_99(relation, value) }}

    ),

    bin_width as (

        select greatest(coalesce(value_99, 0) / {{ bins }}, 0.01) as width
        from percentile_99

    ),

    binned as (

        select least(floor(values_to_bin.{{ value }} / bin_width.width), {{ bins }}) as bin_index
        from {{ relation }} as values_to_bin
        cross join bin_width

    )

    select
        binned.bin_index * bin_width.width as bin_lower,
        case
            when binned.bin_index < {{ bins }} then (binned.bin_index + 1) * bin_width.width
        end as bin_upper,
        count(*) as {{ count_alias }}
    from binned
    cross join bin_width
    group by binned.bin_index, bin_width.width
{% endmacro %}



{#- One row, `value_99`: the exact 99th percentile of `value`, as percentile_cont gives it. -#}
{% macro percentile_99(relation, value) %}
    {{- return(adapter.dispatch('percentile_99', 'clv')(relation, value)) -}}
{% endmacro %}

{% macro default__percentile_99(relation, value) %}
    with

    value_counts as (

        -- Each distinct value once, with how often it occurs. Amounts of money repeat
        -- (48.7M purchases, 107k distinct amounts), so this is small where a sort of
        -- every value spilled (3.4 s against 0.3 s); percentile_cont would hold every
        -- value in memory at once and outgrow DuckDB's memory limit.
        select
            {{ value }} as distinct_value,
            count(*) as value_count
        from {{ relation }}
        where {{ value }} is not null
        group by {{ value }}

    ),

    value_total as (

        select cast(sum(value_count) as bigint) as total_count
        from value_counts

    ),

    cumulative_counts as (

        select
            distinct_value,
            sum(value_count) over (
                order by distinct_value rows between unbounded preceding and current row
            ) as count_up_to
        from value_counts

    ),

    percentile_position as (

        -- percentile_cont's definition: position 0.99 (n - 1) in ascending order,
        -- counted from 0, interpolated between its two neighbours.
        select
            floor(0.99 * (total_count - 1)) as lower_position,
            0.99 * (total_count - 1) - floor(0.99 * (total_count - 1)) as fraction
        from value_total

    ),

    neighbours as (

        -- The value at position i is the least one with more than i values up to it.
        select
            min(
                case when cumulative_counts.count_up_to > percentile_position.lower_position then cumulative_counts.distinct_value end
            ) as lower_value,
            min(
                case when cumulative_counts.count_up_to > percentile_position.lower_position + 1 then cumulative_counts.distinct_value end
            ) as upper_value,
            any_value(percentile_position.fraction) as fraction
        from cumulative_counts
        cross join percentile_position

    )

    select lower_value + fraction * coalesce(upper_value - lower_value, 0) as value_99
    from neighbours
{% endmacro %}

{#- Spark's exact percentile counts each distinct value once, so it holds the distinct values, not every row. -#}
{% macro spark__percentile_99(relation, value) %}
    select percentile({{ value }}, 0.99) as value_99
    from {{ relation }}
{% endmacro %}
