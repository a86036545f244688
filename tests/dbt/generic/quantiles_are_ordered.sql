{#- Fails on every row whose quantile columns (var quantiles) are null, negative or cross. -#}
{% test quantiles_are_ordered(model) %}
{%- set columns = quantile_columns() %}

select *
from {{ model }}
where
    not coalesce(
        {%- for column in columns %}
            {{ column }} >= {{ columns[loop.index0 - 1] if not loop.first else 0 }}
            {%- if not loop.last %} and{% endif %}
        {%- endfor %},
        false
    )

{% endtest %}
