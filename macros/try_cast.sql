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


{#-
    A number as the file writes it (var decimal_separator), or null. With a decimal
    comma, a point is a thousands separator (1.234,56) or a slip, never read: such a
    value is null, so its row is quarantined rather than read a thousand times off.
-#}
{% macro parse_number(expression) -%}
    {%- set separator = var('decimal_separator') -%}
    {%- if separator == '.' -%}
        {{ try_cast(expression, 'double') }}
    {%- elif separator == ',' -%}
        case
            when {{ dbt.position("'.'", expression) }} = 0
                then {{ try_cast("replace(" ~ expression ~ ", ',', '.')", 'double') }}
        end
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "The var decimal_separator must be '.' or ',', got " ~ (separator | string | tojson) ~ "."
        ) }}
    {%- endif -%}
{%- endmacro %}
