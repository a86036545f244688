{{ config(materialized='table') }}
{%- set input = transactions_input() %}
{%- set mapped = input.mapped %}
{#- The file is read by read_transactions(); this call only records the lineage. #}
{%- do source('transactions', 'raw_transactions') %}
-- The rows read here are the lines the reader can split; the others, and a refusal
-- of a file that does not decode, come first:
-- depends_on: {{ ref('stg_transactions__unreadable_rows') }}
{%- set text_type = dbt.type_string() %}
{#- An id that is blank after trimming every Unicode space, or a placeholder, is missing. #}
{%- set missing_id_values = sql_string_tuple(var('missing_customer_id_values')) %}

{#- The file's column as text, or null text for an optional column it lacks. #}
{%- set raw = {} %}
{%- for ours in ['customer_id', 'transaction_date', 'amount', 'quantity', 'transaction_id'] %}
    {%- if ours in mapped %}
        {%- do raw.update({ours: 'cast(' ~ sql_identifier(mapped[ours]) ~ ' as ' ~ text_type ~ ')'}) %}
    {%- else %}
        {%- do raw.update({ours: 'cast(null as ' ~ text_type ~ ')'}) %}
    {%- endif %}
{%- endfor %}

{#- What makes two rows copies of one transaction depends on what the file offers. #}
{%- if 'transaction_id' in mapped %}
    {%- set duplicate_reason = 'duplicate_transaction_id' %}
    {%- set duplicate_key = 'transaction_id' %}
    {#- Of copies that share an id, the earliest by content survives. #}
    {%- set content_order = 'transaction_at, amount, customer_id, quantity' %}
{%- elif var('reject_exact_duplicate_rows') %}
    {%- set duplicate_reason = 'duplicate_row' %}
    {#- An exact duplicate is identical in every column of the file, mapped or not. #}
    {%- set duplicate_key = 'file_row' %}
    {%- set content_order = none %}
{%- endif %}

{%- if duplicate_key %}
    {#- Only rows that passed the field checks compete for a key, so a broken first
        copy never knocks out a good second one; the rest share the null partition,
        where the number is never read. #}
    {%- set partition = 'partition by case when field_rejection_reason is null then '
        ~ duplicate_key ~ ' end' %}
    {#- The rule: the earliest copy by content survives, and of identical copies
        the first in the file. #}
    {%- set copy_number = 'row_number() over (' ~ partition ~ ' order by '
        ~ (content_order ~ ', ' if content_order else '') ~ 'input_row_number)' %}
{%- else %}
    {%- set duplicate_reason = 'duplicate_row' %}  {#- never given: the check is off #}
    {%- set copy_number = '1' %}
{%- endif %}

{%- if input.files | length > 1 %}
    {%- set row_number_in_file =
        'input_row_number - min(input_row_number) over (partition by source_file) + 1' %}
{%- else %}
    {%- set row_number_in_file = 'input_row_number' %}
{%- endif %}

{%- if var('transaction_date_format') %}
    {%- set parsed_timestamp =
        "try_strptime(trim(transaction_date_raw), " ~ sql_string(var('transaction_date_format')) ~ ")" %}
{%- else %}
    {%- set parsed_timestamp = try_cast('transaction_date_raw', 'timestamp') %}
{%- endif %}

with

file_rows as (

    -- File order is the order a user sees: number rows before anything reorders them.
    select
        *,
        row_number() over () as input_row_number
    from {{ read_transactions(input) }}

),

source_rows as (

    select
        input_row_number,
        filename as source_file,
        {{ raw.customer_id }} as customer_id_raw,
        {{ trim_unicode_whitespace(raw.customer_id) }} as customer_id_trimmed,
        {{ raw.transaction_date }} as transaction_date_raw,
        {{ raw.amount }} as amount_raw,
        {{ raw.quantity }} as quantity_raw,
        {{ raw.transaction_id }} as transaction_id_raw,
        row(
            {%- for name in input.columns %}
                {{ sql_identifier(name) }}{{ ',' if not loop.last }}
            {%- endfor %}
        ) as file_row
    from file_rows

),

parsed as (

    select
        *,
        {{ row_number_in_file }} as source_row_number,
        case
            when customer_id_trimmed in {{ missing_id_values }} then null
            else nullif(customer_id_trimmed, '')
        end as customer_id,
        {{ parsed_timestamp }} as transaction_at,
        {{ try_cast('amount_raw', 'double') }} as amount,
        {{ try_cast('quantity_raw', 'double') }} as quantity,
        nullif(trim(transaction_id_raw), '') as transaction_id
    from source_rows

),

field_checks as (

    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when transaction_at is null then 'unparsable_transaction_date'
            when nullif(trim(amount_raw), '') is null then 'missing_amount'
            when amount is null then 'non_numeric_amount'
            when nullif(trim(quantity_raw), '') is not null and quantity is null
                then 'non_numeric_quantity'
            -- NaN and infinities parse as numbers but fail this test too.
            when not (amount between {{ number_var('amount_min') }} and {{ number_var('amount_max') }})
                then 'amount_out_of_bounds'
            when cast(transaction_at as date) > {{ as_of_date_or_run_date() }}
                then 'after_as_of_date'
            when transaction_id is null and {{ 'true' if 'transaction_id' in mapped else 'false' }}
                then 'missing_transaction_id'
        end as field_rejection_reason
    from parsed

),

duplicate_checks as (

    select
        *,
        {{ copy_number }} as copy_number
    from field_checks

),

final as (

    select
        source_file,
        source_row_number,
        customer_id_raw,
        transaction_date_raw,
        amount_raw,
        quantity_raw,
        transaction_id_raw,
        customer_id,
        transaction_at,
        amount,
        transaction_id,
        cast(transaction_at as date) as transaction_date,
        coalesce(quantity, 1) as quantity,
        coalesce(
            field_rejection_reason,
            case when copy_number > 1 then '{{ duplicate_reason }}' end
        ) as rejection_reason
    from duplicate_checks

)

select * from final
