{#
    Every value that reaches SQL from a var or a path goes through one of these,
    so a quote, a semicolon or a backslash in it stays data and never becomes SQL.
#}

{#- A SQL string literal: single quotes doubled. -#}
{% macro sql_string(value) -%}
    {{- adapter.dispatch('sql_string', 'clv')(value) -}}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ (value | string).replace("'", "''") }}'
{%- endmacro %}

{#- Spark reads a backslash as an escape and '' as two adjacent literals: escape both. -#}
{% macro spark__sql_string(value) -%}
    '{{ (value | string).replace("\\", "\\\\").replace("'", "\\'") }}'
{%- endmacro %}


{#- A quoted SQL identifier (a column name from the user's file): double quotes doubled. -#}
{% macro sql_identifier(name) -%}
    {{- adapter.dispatch('sql_identifier', 'clv')(name) -}}
{%- endmacro %}

{% macro default__sql_identifier(name) -%}
    "{{ (name | string).replace('"', '""') }}"
{%- endmacro %}

{% macro spark__sql_identifier(name) -%}
    `{{ (name | string).replace('`', '``') }}`
{%- endmacro %}


{#- A list of SQL string literals, e.g. for read_csv's list of files. -#}
{% macro sql_string_list(values) -%}
    [{%- for value in values -%}{{ sql_string(value) }}{{ ', ' if not loop.last }}{%- endfor -%}]
{%- endmacro %}


{#- Values for an `in (...)` test; ('') for an empty list, which matches nothing a trimmed id can be. -#}
{% macro sql_string_tuple(values) -%}
    ({%- for value in values or [''] -%}{{ sql_string(value) }}{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}


{#-
    The value of a numeric var as a SQL number. Raises one sentence when it is not
    a number, so a value such as `abc` or `0 EUR` never reaches SQL. `clv run`
    validates every var (ranges too) before dbt starts; this guards plain `dbt`.
-#}
{% macro number_var(name, whole=false) -%}
    {%- set value = var(name) -%}
    {%- set ok = value is number and value is not boolean and (not whole or value is integer) -%}
    {%- if not ok -%}
        {{ exceptions.raise_compiler_error(
            "The var " ~ name ~ " must be a " ~ ("whole number" if whole else "number")
            ~ ", got " ~ (value | tojson) ~ "."
        ) }}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}


{#- The value of a date var (YYYY-MM-DD) as a SQL date, or none when unset. -#}
{% macro date_var(name) -%}
    {%- set value = var(name) -%}
    {%- if value is none or value == '' -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
        {{ exceptions.raise_compiler_error(
            "The var " ~ name ~ " must be a date like 2026-06-30, got " ~ (value | string | tojson) ~ "."
        ) }}
    {%- endif -%}
    {{- return('cast(' ~ sql_string(value) ~ ' as date)') -}}
{%- endmacro %}
