{#-
    Fails once for each column whose name or type differs from the expected ones: a
    missing column, an extra column or a changed type. For the public tables whose
    columns follow var `quantiles` (and so cannot carry a fixed dbt contract):
    `per_quantile` maps a name pattern such as 'spend_p{}' to its type, and the test
    expects one column per configured level (spend_p10 for 0.1, spend_p2_5 for 0.025);
    `with_median` holds the columns that exist only when 0.5 is one of the levels.
-#}
{% test columns_are(model, columns, per_quantile={}, with_median={}) %}

{%- set expected = [] %}
{%- for name, type in columns.items() %}
    {%- do expected.append((name, type)) %}
{%- endfor %}
{%- for name, type in with_median.items() if 0.5 in var('quantiles') %}
    {%- do expected.append((name, type)) %}
{%- endfor %}
{%- for pattern, type in per_quantile.items() %}
    {%- for level in var('quantiles') %}
        {%- do expected.append((pattern | replace('{}', quantile_suffix(level)), type)) %}
    {%- endfor %}
{%- endfor %}

with

expected_columns as (

    {%- for name, type in expected %}
    select
        {{ sql_string(name) }} as column_name,
        {{ sql_string(type | upper) }} as data_type
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

actual_columns as (

    {#- From the adapter, not information_schema: every engine has the former. #}
    {%- set actual = adapter.get_columns_in_relation(model) if execute else [] %}
    {%- for column in actual %}
    select
        {{ sql_string(column.name) }} as column_name,
        {{ sql_string(canonical_type(column.dtype)) }} as data_type
    {{ 'union all' if not loop.last }}
    {%- else %}
    select
        {{ sql_string('') }} as column_name,
        {{ sql_string('') }} as data_type
    where 1 = 0
    {%- endfor %}

),

final as (

    select
        expected_columns.data_type as expected_type,
        actual_columns.data_type as actual_type,
        coalesce(expected_columns.column_name, actual_columns.column_name) as column_name
    from expected_columns
    full outer join actual_columns
        on expected_columns.column_name = actual_columns.column_name

)

select * from final
where expected_type is distinct from actual_type

{% endtest %}
