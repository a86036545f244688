{#
    A 64-bit hash of a list of expressions, for finding candidates (repeated keys)
    cheaply: equal values hash alike, and a collision only makes a candidate that
    an exact comparison after it discards. Grouping the strings themselves ran
    DuckDB out of its 1GB at 100M rows; grouping their hashes does not.
#}
{% macro fast_hash(expressions) %}
    {{- return(adapter.dispatch('fast_hash', 'clv')(expressions)) -}}
{% endmacro %}

{% macro default__fast_hash(expressions) -%}
    {%- set parts = [] -%}
    {%- for expression in expressions -%}
        {%- if not loop.first %}{% do parts.append("'|'") %}{% endif -%}
        {%- do parts.append("coalesce(cast(" ~ expression ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{% macro duckdb__fast_hash(expressions) -%}
    hash({{ expressions | join(', ') }})
{%- endmacro %}

{% macro spark__fast_hash(expressions) -%}
    xxhash64({{ expressions | join(', ') }})
{%- endmacro %}
