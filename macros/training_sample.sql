{#
    Training on every customer at every cutoff costs more than it teaches once
    the base is large: above var max_training_rows examples, whole customers
    are sampled (all their cutoffs together) by a stable hash of their id, so
    reruns pick the same customers.
#}
{% macro training_sample_share(scoring_features, training_cutoffs) %}
    {#- 0 means no limit: every customer, and no counting query. -#}
    {%- if not execute or not var('max_training_rows') -%}
        {{ return(1.0) }}
    {%- endif -%}
    {#- Compiling before the first build (e.g. sqlfluff): nothing to count yet. -#}
    {%- if load_relation(scoring_features) is none or load_relation(training_cutoffs) is none -%}
        {{ return(1.0) }}
    {%- endif -%}
    {#- The production training set: each cutoff holds every customer seen by then.
        (The backtest trains on as many; its holdout is sampled alike.) -#}
    {%- set counts = run_query(
        "select count(*) from " ~ scoring_features ~ " as features"
        ~ " inner join " ~ training_cutoffs ~ " as cutoffs"
        ~ " on features.first_transaction_date <= cutoffs.cutoff_date"
        ~ " where cutoffs.purpose = 'production'"
    ) -%}
    {%- set examples = counts.columns[0].values()[0] or 0 -%}
    {%- set limit = var('max_training_rows') | int -%}
    {{ return(1.0 if examples <= limit else limit / examples) }}
{% endmacro %}


{#- True for about `share` of customers, the same ones on every run. -#}
{% macro customer_in_sample(customer_id, share) %}
    {{- return(adapter.dispatch('customer_in_sample', 'clv')(customer_id, share)) -}}
{% endmacro %}

{% macro default__customer_in_sample(customer_id, share) -%}
    {%- if share >= 1 -%}
        true
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "Sampling customers (var max_training_rows) needs a hash function: add "
            ~ adapter.type() ~ "__customer_in_sample to macros/training_sample.sql."
        ) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__customer_in_sample(customer_id, share) -%}
    {%- if share >= 1 -%}
        true
    {%- else -%}
        hash({{ customer_id }}) % 1000000 < {{ (share * 1000000) | int }}
    {%- endif -%}
{%- endmacro %}

{#- Another hash than DuckDB's, so a sampled Spark build trains on other customers. -#}
{% macro spark__customer_in_sample(customer_id, share) -%}
    {%- if share >= 1 -%}
        true
    {%- else -%}
        pmod(xxhash64({{ customer_id }}), 1000000) < {{ (share * 1000000) | int }}
    {%- endif -%}
{%- endmacro %}
