{#
    Each combination of `columns` in `relation` that appears more than once, with
    its count: the body of the key tests. Grouping every key at once ran DuckDB
    out of its 1GB at 100M rows, so the keys' hashes are grouped first and only
    the keys behind a repeated hash (the copies, and the odd collision) are
    compared exactly.
#}
{% macro repeated_combinations(relation, columns, where=none) %}

with

repeated_hashes as (

    {{ repeated_key_hashes(relation, columns, where) }}

)

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ relation }}
where
    {{ fast_hash(columns) }} in (select repeated_hashes.key_hash from repeated_hashes)
    {%- if where %}
    and {{ where }}
    {%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endmacro %}


{#- The hashes (as key_hash) of the combinations of `columns` that appear more than
    once: the candidates, to be compared exactly. -#}
{% macro repeated_key_hashes(relation, columns, where=none) %}
    select {{ fast_hash(columns) }} as key_hash
    from {{ relation }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    group by {{ fast_hash(columns) }}
    having count(*) > 1
{% endmacro %}


{#- dbt's own `unique` test, on the same plan (it is dispatched, so the project's wins). -#}
{% macro default__test_unique(model, column_name) %}
    {{ repeated_combinations(model, [column_name], column_name ~ ' is not null') }}
{% endmacro %}
