{#- Fails once for each combination of the columns that appears more than once. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {{ repeated_combinations(model, combination_of_columns) }}
{% endtest %}
