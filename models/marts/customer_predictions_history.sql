{#-
    A rerun replaces its run's rows: DuckDB deletes them by key first; Spark's Parquet
    tables have no deletes, so there a run is a partition, overwritten whole.
-#}
{{
    config(
        materialized='incremental',
        unique_key=['as_of_date', 'model_version', 'customer_id'],
        incremental_strategy='insert_overwrite' if target.type == 'spark' else 'delete+insert',
        partition_by=['as_of_date', 'model_version'] if target.type == 'spark' else none,
        on_schema_change='append_new_columns',
    )
}}

{#-
    Every scoring run, kept: rerunning the same (as_of_date, model_version)
    replaces that run's rows instead of duplicating them. A history from an
    earlier release gains a new column of customer_predictions, null on its rows.
-#}
with

customer_predictions as (

    select * from {{ ref('customer_predictions') }}

)

-- The prediction columns follow var quantiles, so they are not listed here.
select * from customer_predictions  -- noqa: AM04
