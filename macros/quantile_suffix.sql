{#- The suffix of a quantile level's columns, as clv.training.quantile_column names them. -#}
{% macro quantile_suffix(level) -%}
    {{ ('%g' | format(level * 100)) | replace('.', '_') }}
{%- endmacro %}
