{#
    Refusals that say what the input holds, before any model is trained: an input
    with no valid transaction, and a history too short to learn from. Run as
    post-hooks, so the counts come from the table just built.
#}

{#- Post-hook of int_customer_features_as_of_date: at least one customer to forecast. -#}
{% macro refuse_input_without_customers(features) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set customers = run_query("select count(*) from " ~ features).columns[0].values()[0] -%}
    {%- if customers > 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set path = var('transactions_path') -%}
    {#- Upstream models found by name, not ref(): they are read only to explain a
        refusal, and are no input of the features. -#}
    {%- set rows = staging_relation('stg_transactions__rows') -%}
    {%- set unreadable = staging_relation('stg_transactions__unreadable_rows') -%}
    {%- set rejected = staging_relation('rejected_transactions') -%}
    {%- set counts = run_query(
        "select count(*), count(case when rejection_reason = 'after_as_of_date' then 1 end),"
        ~ " min(case when rejection_reason = 'after_as_of_date' then transaction_date end),"
        ~ " count(transaction_at),"
        ~ " min(case when rejection_reason = 'unparsable_transaction_date'"
        ~ " and trim(transaction_date_raw) != '' then transaction_date_raw end)"
        ~ " from " ~ rows
    ).rows[0] -%}
    {%- set unreadable = run_query("select count(*) from " ~ unreadable).columns[0].values()[0] -%}
    {%- set rows = counts[0] + unreadable -%}
    {%- if rows == 0 -%}
        {%- set message = path ~ " holds a header and no transactions." -%}
    {%- elif counts[1] == counts[0] and unreadable == 0 -%}
        {%- set message = "No transaction in " ~ path ~ " is dated on or before the as-of date "
            ~ (var('as_of_date') or 'today') ~ ": all " ~ rows ~ " are later (the earliest: "
            ~ counts[2] ~ "). Set --as-of (var as_of_date) to a date inside the history." -%}
    {%- elif counts[3] == 0 and counts[4] is not none -%}
        {#- Not one date parses: the layout is wrong, not the rows. -#}
        {%- set column = "'" ~ var('transaction_date_column') ~ "' (var transaction_date_column)" -%}
        {%- if var('transaction_date_format') -%}
            {%- set message = "No date in the column " ~ column ~ " of " ~ path
                ~ " parses with the var transaction_date_format " ~ (var('transaction_date_format') | string | tojson)
                ~ " (e.g. " ~ (counts[4] | tojson) ~ " does not): set it to the dates' layout,"
                ~ " e.g. \"%d/%m/%Y\" for 31/12/2025, or unset it for ISO dates such as 2025-12-31." -%}
        {%- else -%}
            {%- set message = "No date in the column " ~ column ~ " of " ~ path
                ~ " is an ISO date or datetime (e.g. " ~ (counts[4] | tojson) ~ " is not):"
                ~ " set the var transaction_date_format to the dates' layout, e.g. \"%d/%m/%Y\" for 31/12/2025." -%}
        {%- endif -%}
    {%- else -%}
        {%- set reasons = run_query(
            "select rejection_reason, count(*) from " ~ rejected
            ~ " group by rejection_reason order by count(*) desc, rejection_reason limit 1"
        ).rows[0] -%}
        {%- set message = "None of the " ~ "{:,}".format(rows) ~ " rows of " ~ path ~ " is a valid transaction"
            ~ " (the most common reason: " ~ reasons[0] ~ ", " ~ "{:,}".format(reasons[1])
            ~ (" row" if reasons[1] == 1 else " rows") ~ "); see the table rejected_transactions." -%}
        {#- Numbers holding the mark the vars leave unread (12,50 or 1,234.50) are the usual cause. -#}
        {%- set columns = {'non_numeric_amount': 'amount_raw', 'non_numeric_unit_price': 'unit_price_raw',
            'non_numeric_quantity': 'quantity_raw'} -%}
        {%- if reasons[0] in columns and var('thousands_separator') is none -%}
            {%- set other = ',' if var('decimal_separator') == '.' else '.' -%}
            {%- set examples = first_rejected_value(rejected, reasons[0], columns[reasons[0]],
                dbt.position(sql_string(other), columns[reasons[0]]) ~ " > 0") -%}
            {%- if examples -%}
                {%- set message = message ~ " Its numbers hold a " ~ (other | tojson) ~ " (e.g. "
                    ~ quoted(examples[0] | trim) ~ "): set the var thousands_separator to '" ~ other
                    ~ "' if it groups thousands, or decimal_separator to '" ~ other ~ "' if it marks decimals." -%}
            {%- endif -%}
        {%- endif -%}
        {#- So is a currency symbol beside the amounts ($12.50). -#}
        {%- if reasons[0] in ('non_numeric_amount', 'non_numeric_unit_price') and var('currency_symbol') is none -%}
            {#- Spelt out, not \s: the SQL engine's and Python's differ on no-break spaces. -#}
            {%- set not_in_a_number = "[^0-9.,' \t\u00a0\u202f+-]" -%}
            {%- set examples = first_rejected_value(rejected, reasons[0], columns[reasons[0]],
                matches_pattern(columns[reasons[0]], ".*" ~ not_in_a_number ~ ".*")) -%}
            {%- if examples -%}
                {%- set symbol = modules.re.search(not_in_a_number ~ "+", examples[0])[0] -%}
                {%- set message = message ~ " Its amounts hold the symbol " ~ quoted(symbol) ~ " (e.g. "
                    ~ quoted(examples[0] | trim) ~ "): set the var currency_symbol to " ~ quoted(symbol)
                    ~ " if every amount is in that currency." -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(message) }}
{% endmacro %}


{#- Post-hook of int_customer_features_as_of_date: an as-of date the history reaches. -#}
{% macro refuse_as_of_date_past_the_history(features) %}
    {#- Unset, the as-of date is the last valid transaction's: nothing to check. -#}
    {%- if not execute or not date_var('as_of_date') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set dates = run_query(
        "select max(last_purchase_date), max(as_of_date) from " ~ features
    ).rows[0] -%}
    {#- Days after the file ends read as days when nobody bought; past the shortest label
        window, whole training windows (the latest, the one the levels are read on) are
        such days, and the forecast learns that every customer lapsed. -#}
    {%- set allowed = var('min_label_window_days') -%}
    {%- if dates[0] is none or (dates[1] - dates[0]).days <= allowed -%}
        {{ return('') }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(
        "The last purchase in " ~ var('transactions_path') ~ " is on " ~ dates[0] ~ ", "
        ~ "{:,}".format((dates[1] - dates[0]).days) ~ " days before the as-of date " ~ dates[1]
        ~ ": the file does not reach those days, and training would read them as days when"
        ~ " nobody bought. Set --as-of (var as_of_date) at most " ~ allowed ~ " days after the"
        ~ " last purchase (var min_label_window_days), or leave it unset to forecast from the"
        ~ " last transaction's date."
    ) }}
{% endmacro %}


{#- [the first (in file order) text of column among the rows rejected for reason where condition], or []. -#}
{% macro first_rejected_value(rejected, reason, column, condition) %}
    {{- return(run_query(
        "select " ~ column ~ " from " ~ rejected ~ " where rejection_reason = '" ~ reason
        ~ "' and " ~ condition ~ " order by source_file, source_row_number limit 1"
    ).columns[0].values()) -}}
{% endmacro %}


{#- A value of the file in double quotes, its characters as they are (tojson writes € as \u20ac). -#}
{% macro quoted(text) %}
    {{- return('"' ~ text ~ '"') -}}
{% endmacro %}


{% macro staging_relation(name) %}
    {{ return(adapter.get_relation(database=target.database, schema=target.schema, identifier=name)) }}
{% endmacro %}


{#- Post-hook of int_training_cutoffs: the history must hold at least one production training cutoff. -#}
{% macro refuse_history_too_short_to_train(cutoffs, features) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set production = run_query(
        "select count(*) from " ~ cutoffs ~ " where purpose = 'production'"
    ).columns[0].values()[0] -%}
    {%- if production > 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set span = run_query(
        "select min(first_transaction_date), max(as_of_date) from " ~ features
    ).rows[0] -%}
    {%- set days = (span[1] - span[0]).days + 1 -%}
    {%- set label_days = [var('min_label_window_days') | int, var('horizon_days') | int] | min -%}
    {%- set needed = var('min_training_history_days') + label_days -%}
    {{ exceptions.raise_compiler_error(
        "The history in " ~ var('transactions_path') ~ " runs from " ~ span[0] ~ " to " ~ span[1]
        ~ " (" ~ days ~ (" day" if days == 1 else " days") ~ "); training needs at least " ~ needed
        ~ " days (vars min_training_history_days + min_label_window_days, or the horizon when"
        ~ " shorter): give a longer history,"
        ~ " or score with a registered model (--score-only)."
    ) }}
{% endmacro %}


{#-
    Post-hook of int_training_examples_labelled: some customer must spend in a label
    window after a production cutoff, or the boosters have nothing to learn (LightGBM
    stops on "sum of labels is zero"): a file of one-off buyers, or a tiny sample.
-#}
{% macro refuse_training_without_buyers(examples) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set counts = run_query(
        "select count(*), count(case when label_net_spend > 0 then 1 end), count(distinct cutoff_date)"
        ~ " from " ~ examples ~ " where purpose = 'production'"
    ).rows[0] -%}
    {%- if counts[1] > 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set share = training_sample_share(ref('int_customer_features_as_of_date'), ref('int_training_cutoffs')) -%}
    {%- set message = "No customer of " ~ var('transactions_path') ~ " spent anything in a label window"
        ~ " after a training cutoff (" ~ ("{:,}".format(counts[0]) ~ " examples at " ~ counts[2]
        ~ " cutoffs, every label 0" if counts[0] else "no customer in the training sample")
        ~ "), so the boosters have no returning buyer to learn from." -%}
    {%- if share < 1 -%}
        {%- set message = message ~ " The var max_training_rows (" ~ "{:,}".format(var('max_training_rows') | int)
            ~ ") keeps a sample of " ~ "{:.2%}".format(share) ~ " of the customers: raise it, or set it to 0"
            ~ " for no limit." -%}
    {%- else -%}
        {%- set message = message ~ " Its customers buy once, or not again within a label window"
            ~ " (the horizon, " ~ var('horizon_days') ~ " days): a forecast from this history would be 0"
            ~ " for everyone." -%}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(message) }}
{% endmacro %}
