{#
    A cast that yields null instead of failing and ignores surrounding spaces.
    dbt's own safe_cast is a plain cast on DuckDB (dbt-duckdb 1.11), which
    would fail the build on the first unparsable value instead of quarantining
    the row. DuckDB's try_cast already ignores surrounding spaces, and an
    explicit trim costs a pass over every string on ten million rows.
#}
{% macro try_cast(expression, type) %}
    {{- return(adapter.dispatch('try_cast', 'clv')(expression, type)) -}}
{% endmacro %}

{% macro default__try_cast(expression, type) -%}
    {{ dbt.safe_cast('trim(' ~ expression ~ ')', type) }}
{%- endmacro %}

{% macro duckdb__try_cast(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{% macro spark__try_cast(expression, type) -%}
    try_cast(trim({{ expression }}) as {{ type }})
{%- endmacro %}
