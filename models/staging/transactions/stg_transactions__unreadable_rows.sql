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

reader_errors as (

    select
        scans.file_path as source_file,
        errors.line as source_line_number,
        errors.error_type,
        errors.csv_line,
        errors.error_message,
        -- One reason per line: the first that applies.
        case errors.error_type
            when 'INVALID ENCODING' then 0
            when 'INVALID UNICODE' then 0
            when 'LINE SIZE OVER MAXIMUM' then 1
            when 'UNQUOTED VALUE' then 2
            when 'TOO MANY COLUMNS' then 3
            when 'MISSING COLUMNS' then 4
            else 5
        end as priority
    from temp.clv_reject_errors as errors
    inner join temp.clv_reject_scans as scans
        on errors.scan_id = scans.scan_id and errors.file_id = scans.file_id

),

lines as (

    select
        source_file,
        source_line_number,
        arg_min(error_type, priority) as error_type,
        arg_min(csv_line, priority) as csv_line,
        arg_min(error_message, priority) as error_message
    from reader_errors
    group by source_file, source_line_number

),

final as (

    select
        source_file,
        error_message as reader_message,
        cast(source_line_number as bigint) as source_line_number,
        case error_type
            when 'INVALID ENCODING' then 'undecodable_line'
            when 'INVALID UNICODE' then 'undecodable_line'
            when 'LINE SIZE OVER MAXIMUM' then 'line_too_long'
            when 'UNQUOTED VALUE' then 'malformed_quotes'
            when 'TOO MANY COLUMNS' then 'too_many_fields'
            when 'MISSING COLUMNS' then 'too_few_fields'
            else 'unreadable_line'
        end as rejection_reason,
        trim(csv_line, chr(10) || chr(13)) as raw_line
    from lines

)

select * from final
