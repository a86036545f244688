{{ config(materialized='table') }}
{%- set input = transactions_input() %}
{%- set mapped = input.mapped %}
{#- The file is read by numbered_input_rows(); this call only records the lineage. #}
{%- do source('transactions', 'raw_transactions') %}
-- The rows read here are the lines the reader can split; the others, and a refusal
-- of a file that does not decode, come first:
-- depends_on: {{ ref('stg_transactions__unreadable_rows') }}
-- and a file whose lines a quote hides fails there, before any row is validated:
-- depends_on: {{ ref('stg_transactions__input_files') }}
{%- set text_type = dbt.type_string() %}
{#- An id that is blank after trimming every Unicode space, or a placeholder, is missing. #}
{%- set missing_id_values = sql_string_tuple(var('missing_customer_id_values')) %}

{#- The file's column as text, or null text for an optional column it lacks. #}
{%- set raw = {} %}
{%- for ours in ['customer_id', 'transaction_date', 'amount', 'quantity', 'transaction_id', 'unit_price', 'order_id'] %}
    {%- if ours in mapped %}
        {%- do raw.update({ours: 'cast(' ~ sql_identifier(mapped[ours]) ~ ' as ' ~ text_type ~ ')'}) %}
    {%- else %}
        {%- do raw.update({ours: 'cast(null as ' ~ text_type ~ ')'}) %}
    {%- endif %}
{%- endfor %}

{#- A typed number or date (Parquet's) is taken as it is: the vars that say how text
    writes them would misread it (1.234 read as 1234 with thousands_separator '.'). #}
{%- set typed = typed_input_columns(input) %}
{%- set number = {} %}
{%- for ours in ['amount', 'quantity', 'unit_price'] %}
    {%- if typed.get(mapped.get(ours)) == 'number' %}
        {%- do number.update({ours: 'cast(' ~ ours ~ '_typed as double)'}) %}
    {%- else %}
        {%- do number.update({ours: parse_number(ours ~ '_raw', money=ours != 'quantity')}) %}
    {%- endif %}
{%- endfor %}

{#- What makes two rows copies of one transaction depends on what the file offers. #}
{%- set transaction_id_text = "nullif(trim(transaction_id_raw), '')" %}
{%- set duplicate_check = true %}
{%- set content_order = none %}
{%- if 'transaction_id' in mapped %}
    {%- set duplicate_reason = 'duplicate_transaction_id' %}
    {%- set duplicate_key = 'transaction_id' %}
    {#- Of copies that share an id, the earliest by content survives. #}
    {%- set content_order = 'transaction_at, amount, customer_id, quantity' %}
{%- elif var('reject_exact_duplicate_rows') %}
    {%- set duplicate_reason = 'duplicate_row' %}
    {#- An exact duplicate is identical in every column of the file, mapped or not. #}
    {%- set duplicate_key = 'file_row' %}
{%- else %}
    {#- The check is off: no row competes (the key below is never compared). #}
    {%- set duplicate_check = false %}
    {%- set duplicate_reason = 'duplicate_row' %}
    {%- set duplicate_key = 'input_row_number' %}
{%- endif %}
{#- The key as the file's text gives it, before any other field is parsed. #}
{%- set duplicate_key_text = transaction_id_text if duplicate_key == 'transaction_id' else duplicate_key %}

{#- Order lines: a line's amount is its quantity times its unit price. #}
{%- set order_lines = 'true' if 'order_id' in mapped else 'false' %}
{%- set unit_prices = 'true' if 'unit_price' in mapped else 'false' %}
{%- if 'unit_price' in mapped %}
    {%- set amount = '(' ~ number.quantity ~ ') * (' ~ number.unit_price ~ ')' %}
{%- else %}
    {%- set amount = number.amount %}
{%- endif %}

{%- if typed.get(mapped.transaction_date) == 'time' %}
    {%- set parsed_timestamp = 'cast(transaction_date_typed as timestamp)' %}
{%- elif var('transaction_date_format') %}
    {%- set parsed_timestamp = parse_timestamp('transaction_date_raw', var('transaction_date_format')) %}
{%- else %}
    {%- set parsed_timestamp = parse_iso_timestamp('transaction_date_raw') %}
{%- endif %}

with

file_rows as (

    select * from {{ numbered_input_rows(input) }}

),

source_rows as (

    select
        input_row_number,
        row_number_in_file as source_row_number,
        filename as source_file,
        {{ raw.customer_id }} as customer_id_raw,
        {{ trim_unicode_whitespace(raw.customer_id) }} as customer_id_trimmed,
        {{ raw.transaction_date }} as transaction_date_raw,
        {{ raw.amount }} as amount_raw,
        {{ raw.quantity }} as quantity_raw,
        {{ raw.transaction_id }} as transaction_id_raw,
        {{ raw.unit_price }} as unit_price_raw,
        {{ raw.order_id }} as order_id_raw,
        {%- for ours in ['transaction_date', 'amount', 'quantity', 'unit_price'] if typed.get(mapped.get(ours)) %}
        {{ sql_identifier(mapped[ours]) }} as {{ ours }}_typed,
        {%- endfor %}
        -- Only the check for exact duplicates compares whole rows.
        {{ row_of(input.columns) if duplicate_key == 'file_row' else 'null' }} as file_row
    from file_rows

),

parsed as (

    select
        *,
        case
            when customer_id_trimmed in {{ missing_id_values }} then null
            else nullif(customer_id_trimmed, '')
        end as customer_id,
        {{ parsed_timestamp }} as transaction_at,
        {{ amount }} as amount,
        {{ number.unit_price }} as unit_price,
        {{ number.quantity }} as quantity,
        {{ transaction_id_text }} as transaction_id,
        nullif(trim(order_id_raw), '') as order_id
    from source_rows

),

field_checks as (

    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when transaction_at is null then 'unparsable_transaction_date'
            when {{ unit_prices }} and nullif(trim(unit_price_raw), '') is null then 'missing_unit_price'
            when {{ unit_prices }} and unit_price is null then 'non_numeric_unit_price'
            when {{ unit_prices }} and nullif(trim(quantity_raw), '') is null then 'missing_quantity'
            when not {{ unit_prices }} and nullif(trim(amount_raw), '') is null then 'missing_amount'
            -- With unit prices, a null amount is a quantity that is not a number (next).
            when not {{ unit_prices }} and amount is null then 'non_numeric_amount'
            when nullif(trim(quantity_raw), '') is not null and quantity is null
                then 'non_numeric_quantity'
            -- NaN and infinities parse as numbers but fail this test too.
            when not (amount between {{ number_var('amount_min') }} and {{ number_var('amount_max') }})
                then 'amount_out_of_bounds'
            when cast(transaction_at as date) > {{ as_of_date_or_run_date() }}
                then 'after_as_of_date'
            when transaction_id is null and {{ 'true' if 'transaction_id' in mapped else 'false' }}
                then 'missing_transaction_id'
            when order_id is null and {{ order_lines }}
                then 'missing_order_id'
        end as field_rejection_reason
    from parsed

),

-- With order lines (var order_id_column), the lines of an order are one purchase by
-- one customer on one day; an order id seen with two customers or on two days cannot
-- be, and all its lines are quarantined (which line is right, nothing says).
orders_in_conflict as (

    select
        order_id,
        min(customer_id) != max(customer_id) as has_several_customers
    from field_checks
    where field_rejection_reason is null and {{ order_lines }}
    group by order_id
    having
        min(customer_id) != max(customer_id)
        or min(cast(transaction_at as date)) != max(cast(transaction_at as date))

),

-- Read by the three steps below: inlined into each, not stored (inlined_cte).
order_checks as {{ inlined_cte() }} (

    -- IN, not a join, as for copies below: the conflicts are few.
    select
        *,
        case
            when field_rejection_reason is not null then field_rejection_reason
            when
                order_id in (
                    select orders_in_conflict.order_id from orders_in_conflict
                    where orders_in_conflict.has_several_customers
                )
                then 'order_id_with_several_customers'
            when order_id in (select orders_in_conflict.order_id from orders_in_conflict)
                then 'order_id_with_several_dates'
        end as row_rejection_reason
    from field_checks

),

-- Copies are rare: find the keys that repeat by aggregating their hashes, and order
-- only the rows that carry them, instead of a window that sorts every row (17 s -> 10 s
-- at ten million rows, 271 s -> 124 s at a hundred million). The candidates come from
-- the key's text in every row, before any other field is parsed: a key that repeats
-- among valid rows repeats among all, and parsing every field for this pass cost a
-- sixth of the model's CPU time. Only rows that passed the field checks compete for a
-- key (below), so a broken first copy never knocks out a good second one.
repeated_key_hashes as (

    {{ repeated_key_hashes(
        'source_rows',
        [duplicate_key_text],
        duplicate_key_text ~ ' is not null' if duplicate_check else 'false'
    ) }}

),

later_copies as (

    -- A hash collision lands two keys here; each is its own partition, so neither
    -- is called a copy.
    select
        input_row_number,
        -- The rule: the earliest copy by content survives, and of identical copies
        -- the first in the file (files in name order).
        row_number() over (
            partition by {{ duplicate_key }}
            order by {{ (content_order ~ ', ') if content_order }}source_file, source_row_number
        ) as copy_number
    from order_checks
    where
        row_rejection_reason is null
        and {{ fast_hash([duplicate_key]) }} in (
            select repeated_key_hashes.key_hash from repeated_key_hashes
        )

),

duplicate_checks as (

    -- IN, not a join: its lookup table is built from the few copies, never from every row.
    select
        *,
        case
            when
                input_row_number in (
                    select later_copies.input_row_number from later_copies
                    where later_copies.copy_number > 1
                )
                then '{{ duplicate_reason }}'
        end as duplicate_rejection_reason
    from order_checks

),

checked as (

    select
        *,
        coalesce(row_rejection_reason, duplicate_rejection_reason) as rejection_reason
    from duplicate_checks

),

final as (

    -- The file's text is kept where it is the record: for a rejected row. A valid
    -- row's record is its typed values (writing every field twice cost 3 s of 14
    -- at ten million rows), and the file itself is never changed.
    select
        source_file,
        source_row_number,
        customer_id,
        transaction_at,
        amount,
        transaction_id,
        order_id,
        rejection_reason,
        cast(transaction_at as date) as transaction_date,
        case when rejection_reason is not null then customer_id_raw end as customer_id_raw,
        case when rejection_reason is not null then transaction_date_raw end as transaction_date_raw,
        case when rejection_reason is not null then amount_raw end as amount_raw,
        case when rejection_reason is not null then quantity_raw end as quantity_raw,
        case when rejection_reason is not null then transaction_id_raw end as transaction_id_raw,
        case when rejection_reason is not null then unit_price_raw end as unit_price_raw,
        case when rejection_reason is not null then order_id_raw end as order_id_raw,
        coalesce(quantity, 1) as quantity
    from checked

)

select * from final
