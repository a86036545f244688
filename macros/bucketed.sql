{#-
    Buckets of a non-negative count or number of days, named by their range:
    bounds [0, 1, 4, 10] give '0', '1-3', '4-9' and '10+'. bucket_from is the
    bucket's lower bound, for sorting; a null value is in no bucket.
-#}
{% macro bucket_from(column, bounds) -%}
    case
    {%- for bound in bounds | reverse %}
        when {{ column }} >= {{ bound }} then {{ bound }}
    {%- endfor %}
    end
{%- endmacro %}

{% macro bucket_label(column, bounds) -%}
    case
    {%- for index in range(bounds | length) | reverse %}
        {%- set low = bounds[index] %}
        {%- if loop.first %}
        when {{ column }} >= {{ low }} then '{{ low }}+'
        {%- elif bounds[index + 1] - 1 == low %}
        when {{ column }} >= {{ low }} then '{{ low }}'
        {%- else %}
        when {{ column }} >= {{ low }} then '{{ low }}-{{ bounds[index + 1] - 1 }}'
        {%- endif %}
    {%- endfor %}
    end
{%- endmacro %}
