{#- DuckDB's type names; Spark's synonyms map onto them, so one list serves both. -#}
{% macro canonical_type(type) -%}
    {%- set synonyms = {'STRING': 'VARCHAR', 'INT': 'INTEGER', 'TIMESTAMP_NTZ': 'TIMESTAMP'} -%}
    {{- return(synonyms.get(type | upper, type | upper)) -}}
{%- endmacro %}
