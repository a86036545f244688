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


{#- A stable hash of the id in 0..999999: the key customers are sampled by. -#}
{% macro customer_sample_key(customer_id) %}
    {{- return(adapter.dispatch('customer_sample_key', 'clv')(customer_id)) -}}
{% endmacro %}

{#- Without a hash function every customer has key 0; sampling then refuses (below). -#}
{% macro default__customer_sample_key(customer_id) -%}
    0
{%- endmacro %}

{% macro duckdb__customer_sample_key(customer_id) -%}
    hash({{ customer_id }}) % 1000000
{%- endmacro %}

{#- Another hash than DuckDB's, so a sampled Spark build trains on other customers. -#}
{% macro spark__customer_sample_key(customer_id) -%}
    pmod(xxhash64({{ customer_id }}), 1000000)
{%- endmacro %}


{#-
    True for about `share` of customers, the same ones on every run. sample_key
    is a column holding customer_sample_key: a comparison of a plain column
    goes down through the customer days' window and aggregation to the scan of
    the transactions, where a hash of the id did not (DuckDB 2.0), so only the
    sampled customers' days are built.
-#}
{% macro customer_in_sample(sample_key, share) %}
    {{- return(adapter.dispatch('customer_in_sample', 'clv')(sample_key, share)) -}}
{% endmacro %}

{% macro default__customer_in_sample(sample_key, share) -%}
    {%- if share >= 1 -%}
        true
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "Sampling customers (var max_training_rows) needs a hash function: add "
            ~ adapter.type() ~ "__customer_sample_key and " ~ adapter.type()
            ~ "__customer_in_sample to macros/training_sample.sql."
        ) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__customer_in_sample(sample_key, share) -%}
    {%- if share >= 1 -%}
        true
    {%- else -%}
        {{ sample_key }} < {{ (share * 1000000) | int }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__customer_in_sample(sample_key, share) -%}
    {{- duckdb__customer_in_sample(sample_key, share) -}}
{%- endmacro %}
