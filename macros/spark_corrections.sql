{#-
    Where dbt's cross-database macros give Spark SQL it does not accept, or a
    result that differs from DuckDB's. dbt looks here first (dispatch in
    dbt_project.yml); every other engine keeps dbt's own versions.
-#}

{#- dbt-spark 1.11 translates "string" to varchar, which Spark 4 refuses without a length. -#}
{% macro spark__type_string() -%}
    string
{%- endmacro %}
