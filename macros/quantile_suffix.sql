{#- The suffix of a quantile level's columns, as clv.training.quantile_column names them. -#}
{% macro quantile_suffix(level) -%}
    {{ ('%g' | format(level * 100)) | replace('.', '_') }}
{%- endmacro %}


{#- The forecast's quantile columns, lowest level first: spend_p10, spend_p50, spend_p90 by default. -#}
{% macro quantile_columns() -%}
    {%- set columns = [] -%}
    {%- for level in var('quantiles') | sort -%}
        {%- do columns.append('spend_p' ~ quantile_suffix(level)) -%}
    {%- endfor -%}
    {{- return(columns) -}}
{%- endmacro %}
