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

    value_count as (

        select count(*) as value_count
        from {{ relation }}

    ),

    upper_tail as (

        -- The 99th percentile lies in the top 1% of values (+2): a bounded heap,
        -- where percentile_cont holds every value in memory at once (tens of
        -- millions of purchases outgrow DuckDB's memory limit).
        select {{ value }} as tail_value
        from {{ relation }}
        order by {{ value }} desc
        limit (select cast(floor(0.01 * value_count) as bigint) + 2 from value_count)

    ),

    tail_ranked as (

        select
            tail_value,
            row_number() over (order by tail_value desc) - 1 as rank_from_top
        from upper_tail

    ),

    percentile_position as (

        -- percentile_cont's definition: position 0.99 (n - 1) in ascending order,
        -- interpolated between its two neighbours.
        select
            value_count - 1 - floor(0.99 * (value_count - 1)) as lower_rank_from_top,
            0.99 * (value_count - 1) - floor(0.99 * (value_count - 1)) as fraction
        from value_count

    ),

    neighbours as (

        select
            max(
                case when tail_ranked.rank_from_top = percentile_position.lower_rank_from_top then tail_ranked.tail_value end
            ) as lower_value,
            max(
                case when tail_ranked.rank_from_top = percentile_position.lower_rank_from_top - 1 then tail_ranked.tail_value end
            ) as upper_value,
            any_value(percentile_position.fraction) as fraction
        from tail_ranked
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
