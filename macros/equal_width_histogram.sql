{#
    Histogram of `value` from `relation`: `bins` equal bins from 0 up to the
    99th percentile, then one open-ended bin for the long tail, so a few huge
    values cannot squash the rest into one bar. Columns: bin_lower, bin_upper
    (null for the open bin) and `count_alias`.
#}
{% macro equal_width_histogram(relation, value, count_alias, bins=40) %}
    with

    bin_width as (

        select greatest(percentile_cont(0.99) within group (order by {{ value }}) / {{ bins }}, 0.01) as width
        from {{ relation }}

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
