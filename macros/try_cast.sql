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
    is read only between groups of three digits (1,234,567.50). With money=true (an
    amount or a unit price), the var currency_symbol is read once, before or after the
    number ($12.50, -$5, $-5, 12,50 €); no other symbol is, so a file mixing two
    currencies never adds them up.
-#}
{% macro parse_number(expression, money=false) -%}
    {%- set decimal = var('decimal_separator') -%}
    {%- set thousands = var('thousands_separator') -%}
    {%- set symbol = var('currency_symbol') if money else none -%}
    {%- if decimal not in ('.', ',') -%}
        {{ exceptions.raise_compiler_error(
            "The var decimal_separator must be '.' or ',', got " ~ (decimal | string | tojson) ~ "."
        ) }}
    {%- elif thousands not in (none, ',', '.', ' ', "'") or thousands == decimal -%}
        {{ exceptions.raise_compiler_error(
            "The var thousands_separator must be null, ',', '.', ' ' or \"'\" and differ from"
            ~ " decimal_separator (" ~ (decimal | tojson) ~ "), got " ~ (thousands | string | tojson) ~ "."
        ) }}
    {%- elif decimal == '.' and thousands is none and symbol is none -%}
        {{ try_cast(expression, 'double') }}
    {%- else -%}
        {#- A space groups thousands also as the no-break spaces spreadsheets write. -#}
        {%- set group = {',': ',', '.': '[.]', ' ': '[ \\x{00a0}\\x{202f}]', "'": "'"}.get(thousands) -%}
        {%- set digits = '([0-9]{1,3}(' ~ group ~ '[0-9]{3})+|[0-9]+)' if group else '[0-9]+' -%}
        {%- set point = '[.]' if decimal == '.' else ',' -%}
        {%- set body = '(' ~ digits ~ '(' ~ point ~ '[0-9]*)?|' ~ point ~ '[0-9]+)' -%}
        {%- set text = 'trim(' ~ expression ~ ')' -%}
        {%- if symbol -%}
            {#- The symbol before the number (after its sign or before it) or after it, a
                space (or a no-break one) between them or none. -#}
            {%- set mark = modules.re.escape(symbol) -%}
            {%- set gap = '[ \\x{00a0}\\x{202f}]?' -%}
            {%- set pattern = '([-+]?(' ~ mark ~ gap ~ ')?|' ~ mark ~ gap ~ '[-+])' ~ body
                ~ '|[-+]?' ~ body ~ gap ~ mark -%}
            {%- set plain = remove_pattern(text, gap ~ mark ~ gap) -%}
        {%- else -%}
            {%- set pattern = '[-+]?' ~ body -%}
            {%- set plain = text -%}
        {%- endif -%}
        {%- set plain = remove_pattern(plain, group) if group else plain -%}
        {%- set plain = "replace(" ~ plain ~ ", ',', '.')" if decimal == ',' else plain -%}
        case
            when {{ matches_pattern(text, pattern) }}
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
