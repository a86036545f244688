{#-
    Lines of the input the CSV reader could not split into the header's fields,
    one row each, quarantined with their text and line number. The pre-hook reads
    the file once with DuckDB's store_rejects; every other read of the file skips
    exactly these lines (same dialect, ignore_errors). A line that does not decode
    in var input_encoding fails the build instead: a wrong encoding would
    quarantine every line with an accent, which is not what a user means.
-#}
{{ config(
    materialized='table',
    pre_hook="{{ read_transactions_for_quarantine() }}",
    post_hook="{{ refuse_undecodable_input(this) }}",
) }}

with

unreadable_lines as (

    {{ unreadable_input_lines() }}

),

final as (

    select
        source_file,
        reader_message,
        source_line_number,
        rejection_reason,
        raw_line
    from unreadable_lines

)

select * from final
