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
    A number as the file writes it (vars decimal_separator and thousands_separator),
    or null. Each mark is read only where the vars put it: with a decimal comma and no
    thousands separator, 1.234,56 holds a point that means nothing here, so it is null
    and its row quarantined, never read a thousand times off. A thousands separator
    is read only between groups of three digits (1,234,567.50).
-#}
{% macro parse_number(expression) -%}
    {%- set decimal = var('decimal_separator') -%}
    {%- set thousands = var('thousands_separator') -%}
    {%- if decimal not in ('.', ',') -%}
        {{ exceptions.raise_compiler_error(
            "The var decimal_separator must be '.' or ',', got " ~ (decimal | string | tojson) ~ "."
        ) }}
    {%- elif thousands not in (none, ',', '.', ' ', "'") or thousands == decimal -%}
        {{ exceptions.raise_compiler_error(
            "The var thousands_separator must be null, ',', '.', ' ' or \"'\" and differ from"
            ~ " decimal_separator (" ~ (decimal | tojson) ~ "), got " ~ (thousands | string | tojson) ~ "."
        ) }}
    {%- elif decimal == '.' and thousands is none -%}
        {{ try_cast(expression, 'double') }}
    {%- else -%}
        {#- A space groups thousands also as the no-break spaces spreadsheets write. -#}
        {%- set group = {',': ',', '.': '[.]', ' ': '[ \\x{00a0}\\x{202f}]', "'": "'"}.get(thousands) -%}
        {%- set digits = '([0-9]{1,3}(' ~ group ~ '[0-9]{3})+|[0-9]+)' if group else '[0-9]+' -%}
        {%- set point = '[.]' if decimal == '.' else ',' -%}
        {%- set text = 'trim(' ~ expression ~ ')' -%}
        {%- set plain = remove_pattern(text, group) if group else text -%}
        {%- set plain = "replace(" ~ plain ~ ", ',', '.')" if decimal == ',' else plain -%}
        case
            when {{ matches_pattern(text, '[-+]?(' ~ digits ~ '(' ~ point ~ '[0-9]*)?|' ~ point ~ '[0-9]+)') }}
                then {{ try_cast(plain, 'double') }}
        end
    {%- endif -%}
{%- endmacro %}


{#- The whole of a text matches a regular expression (RE2 on DuckDB, Java's on Spark). -#}
{% macro matches_pattern(expression, pattern) -%}
    {{- adapter.dispatch('matches_pattern', 'clv')(expression, pattern) -}}
{%- endmacro %}

{% macro default__matches_pattern(expression, pattern) -%}
    regexp_full_match({{ expression }}, {{ sql_string(pattern) }})
{%- endmacro %}

{% macro spark__matches_pattern(expression, pattern) -%}
    ({{ expression }} rlike {{ sql_string('^(' ~ pattern ~ ')$') }})
{%- endmacro %}


{#- A text with every match of a regular expression taken out. -#}
{% macro remove_pattern(expression, pattern) -%}
    {{- adapter.dispatch('remove_pattern', 'clv')(expression, pattern) -}}
{%- endmacro %}

{% macro default__remove_pattern(expression, pattern) -%}
    regexp_replace({{ expression }}, {{ sql_string(pattern) }}, '', 'g')
{%- endmacro %}

{% macro spark__remove_pattern(expression, pattern) -%}
    regexp_replace({{ expression }}, {{ sql_string(pattern) }}, '')
{%- endmacro %}
