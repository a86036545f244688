{#
    What the project knows about the input file: which of its columns map onto
    ours, and the one-sentence errors a user sees when the file or a required
    column is missing. How it is read is the source's external_location.
#}

{#
    Returns {'path', 'file_count', 'columns', 'mapped'} where mapped maps our
    column names onto the file's, optional ones only when the file has them.
    Fails the build with one clear sentence when the file or a required column
    is missing. At parse time (execute is false) nothing is read.
#}
{% macro transactions_input() %}
    {%- set path = var('transactions_path') -%}
    {%- set required = {
        'customer_id': var('customer_id_column'),
        'transaction_date': var('transaction_date_column'),
        'amount': var('amount_column'),
    } -%}
    {%- set optional = {
        'quantity': var('quantity_column'),
        'transaction_id': var('transaction_id_column'),
    } -%}
    {%- if not execute -%}
        {{ return({'path': path, 'file_count': 1, 'columns': [], 'mapped': required}) }}
    {%- endif -%}

    {%- set file_count = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] -%}
    {%- if file_count == 0 -%}
        {{ exceptions.raise_compiler_error(
            "Transactions file not found: " ~ path
            ~ " (set the var transactions_path to a CSV or Parquet file, or a glob of them)."
        ) }}
    {%- endif -%}

    {%- set described = run_query(
        "describe select * from " ~ source('transactions', 'raw_transactions') ~ " limit 0"
    ) -%}
    {%- set columns = described.columns[0].values() | reject('equalto', 'filename') | list -%}

    {%- set mapped = {} -%}
    {%- for ours, theirs in required.items() -%}
        {%- if theirs not in columns -%}
            {{ exceptions.raise_compiler_error(
                "Required column '" ~ theirs ~ "' (var " ~ ours ~ "_column) is missing from "
                ~ path ~ ", which has the columns: " ~ columns | join(', ') ~ "."
            ) }}
        {%- endif -%}
        {%- do mapped.update({ours: theirs}) -%}
    {%- endfor -%}
    {%- for ours, theirs in optional.items() -%}
        {%- if theirs and theirs in columns -%}
            {%- do mapped.update({ours: theirs}) -%}
        {%- endif -%}
    {%- endfor -%}

    {{ return({'path': path, 'file_count': file_count, 'columns': columns, 'mapped': mapped}) }}
{% endmacro %}


{#- The rejection boundary: rows dated after this are quarantined. -#}
{% macro as_of_date_or_run_date() %}
    {%- if var('as_of_date') -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as date)
    {%- endif -%}
{% endmacro %}
