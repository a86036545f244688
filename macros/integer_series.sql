{#- 1..n as a column named `step`, written out so that it runs on any engine. -#}
{% macro integer_series(n) %}
    {%- for step in range(1, n + 1) %}
    select {{ step }} as step
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{% endmacro %}
