{#-
    The lines stg_transactions__unreadable_rows quarantines: source_file,
    reader_message, source_line_number, rejection_reason, raw_line.
    DuckDB: its reader's rejects tables, filled by the model's pre-hook.
-#}
{% macro unreadable_input_lines() %}
    {{- return(adapter.dispatch('unreadable_input_lines', 'clv')()) -}}
{% endmacro %}

{% macro default__unreadable_input_lines() %}
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
{% endmacro %}

{#-
    Spark: the rows its CSV reader set aside as `_corrupt_record` (too many or too few
    fields, a broken quote). It does not say which, and it has no line numbers: the
    line is the row's place among all rows of the file, plus one for the header. Spark decodes a wrong encoding with replacement characters instead
    of failing, so undecodable_line never comes from here.
-#}
{% macro spark__unreadable_input_lines() %}
    {%- set input = transactions_input() %}
    select
        filename as source_file,
        'The Spark CSV reader could not split this row into the fields of the header' as reader_message,
        cast(row_in_file + 1 as bigint) as source_line_number,
        'unreadable_line' as rejection_reason,
        _corrupt_record as raw_line
    from (
        select
            *,
            row_number() over (partition by filename order by input_row_number) as row_in_file
        from {{ spark_input_rows(input) }}
    )
    where
        _corrupt_record is not null
        -- Always true here, but it reads a field: Spark refuses a scan of the corrupt
        -- record column alone.
        and coalesce({{ sql_identifier(input.columns[0] if input.columns else '_corrupt_record') }}, _corrupt_record) is not null
{% endmacro %}
