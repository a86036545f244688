{#
    Each input file's lines, counted twice: once as plain text (no quotes, no fields:
    what the file holds) and once as what the CSV reader made of them (rows, and the
    lines their quoted line breaks span). stg_transactions__input_files sets the two
    side by side, so a quote that swallows the lines after it fails the build
    instead of losing them.
#}

{#- Lines of text in a field that holds quoted line breaks: one per run of breaks (a blank line in a field is not counted, as the plain count skips it). -#}
{% macro continuation_lines(expression) -%}
    {{- adapter.dispatch('continuation_lines', 'clv')(expression) -}}
{%- endmacro %}

{#- Spark reads with multiLine off: no field holds a line break. -#}
{% macro spark__continuation_lines(expression) -%}
    cast(0 as bigint)
{%- endmacro %}

{% macro default__continuation_lines(expression) -%}
    case
        when contains({{ expression }}, chr(10)) or contains({{ expression }}, chr(13))
            then len(regexp_extract_all({{ expression }}, '[\r\n]+'))
        else 0
    end
{%- endmacro %}


{#- The read of a CSV file as plain lines: a line break ends a line, a quote is text. -#}
{% macro plain_lines(files) -%}
    read_csv(
        {{ sql_string_list(files) }},
        columns = {'line': 'varchar'}, header = false, auto_detect = false,
        delim = '\n', quote = '', escape = '', strict_mode = false, filename = true,
        encoding = {{ sql_string(var('input_encoding')) }},
        max_line_size = {{ number_var('max_line_bytes', whole=true) }},
        store_rejects = true, rejects_table = 'clv_line_errors', rejects_scan = 'clv_line_scans'
    )
{%- endmacro %}


{#- Pre-hook of stg_transactions__input_files: the plain count, into temporary tables the model reads. -#}
{% macro count_input_lines() %}
    {{- return(adapter.dispatch('count_input_lines', 'clv')()) -}}
{% endmacro %}

{#- Spark counts in the model itself. -#}
{% macro spark__count_input_lines() %}
    {{- return('') -}}
{% endmacro %}

{% macro default__count_input_lines() %}
    {%- set input = transactions_input() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    drop table if exists temp.clv_line_errors;
    drop table if exists temp.clv_line_scans;
    {%- if input.format == 'csv' %}
    {#- A blank line is no row to the CSV reader either; a line too long for the
        reader's buffer is still a line (the rejects below). #}
    create or replace temp table clv_file_lines as
    select
        filename as source_file,
        count(line) as line_count
    from {{ plain_lines(input.files) }}
    group by filename;
    {%- else %}
    create or replace temp table clv_file_lines (source_file varchar, line_count bigint);
    create temp table clv_line_errors (scan_id ubigint, file_id ubigint, line ubigint);
    create temp table clv_line_scans (scan_id ubigint, file_id ubigint, file_path varchar)
    {%- endif %}
{% endmacro %}


{#-
    source_file, line_count (lines of text; null for Parquet), rows_read and
    row_continuation_lines (the further lines the rows' quoted line breaks span),
    one row per input file.
-#}
{% macro input_file_lines(input) %}
    {{- return(adapter.dispatch('input_file_lines', 'clv')(input)) -}}
{% endmacro %}

{% macro default__input_file_lines(input) %}
    {%- set continuation = [] -%}
    {#- Parquet has no lines, and its columns are typed. -#}
    {%- for name in input.columns if input.format == 'csv' -%}
        {%- do continuation.append(continuation_lines(sql_identifier(name))) -%}
    {%- endfor %}
    with

    plain_lines as (

        select
            source_file,
            line_count
        from temp.clv_file_lines

    ),

    lines_too_long as (

        select
            scans.file_path as source_file,
            count(distinct errors.line) as line_count
        from temp.clv_line_errors as errors
        inner join temp.clv_line_scans as scans
            on errors.scan_id = scans.scan_id and errors.file_id = scans.file_id
        group by scans.file_path

    ),

    rows_read as (

        select
            filename as source_file,
            count(*) as rows_read,
            sum({{ continuation | join(' + ') if continuation else '0' }}) as row_continuation_lines
        from {{ read_transactions(input) }}
        group by filename

    )

    select
        files.source_file,
        {%- if input.format == 'csv' %}
        coalesce(plain_lines.line_count, 0) + coalesce(lines_too_long.line_count, 0) as line_count,
        {%- else %}
        cast(null as bigint) as line_count,
        {%- endif %}
        coalesce(rows_read.rows_read, 0) as rows_read,
        coalesce(rows_read.row_continuation_lines, 0) as row_continuation_lines
    from (select unnest({{ sql_string_list(input.files) }}) as source_file) as files
    left join plain_lines on files.source_file = plain_lines.source_file
    left join lines_too_long on files.source_file = lines_too_long.source_file
    left join rows_read on files.source_file = rows_read.source_file
{% endmacro %}

{#- Spark reads with multiLine off: every row and every unreadable row is one line. -#}
{% macro spark__input_file_lines(input) %}
    {%- do run_query(
        "create or replace temporary view clv_input_text using text options (path "
        ~ sql_string(input.path) ~ ")"
    ) if execute and input.format == 'csv' -%}
    with

    rows_read as (

        {#- A field is read too: Spark refuses a scan of the corrupt record column alone. #}
        select
            filename as source_file,
            count(
                case
                    when _corrupt_record is null
                        then coalesce({{ sql_identifier(input.columns[0] if input.columns else 'filename') }}, '')
                end
            ) as rows_read
        from {{ spark_input_rows(input) }}
        group by filename

    ),

    plain_lines as (

        {%- if input.format == 'csv' %}
        select
            input_file_name() as source_file,
            count(*) as line_count
        from clv_input_text
        where value != ''
        group by input_file_name()
        {%- else %}
        select
            cast(null as string) as source_file,
            cast(null as bigint) as line_count
        {%- endif %}

    )

    select
        coalesce(rows_read.source_file, plain_lines.source_file) as source_file,
        plain_lines.line_count,
        coalesce(rows_read.rows_read, 0) as rows_read,
        cast(0 as bigint) as row_continuation_lines
    from rows_read
    full outer join plain_lines on rows_read.source_file = plain_lines.source_file
    where coalesce(rows_read.source_file, plain_lines.source_file) is not null
{% endmacro %}


{#-
    Post-hook of stg_transactions__input_files: a file whose lines the rows and the
    quarantined lines do not account for fails the build, naming the line where the
    quote that swallowed them opens.
-#}
{% macro refuse_lines_hidden_by_a_quote(relation) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set found = run_query(
        "select source_file, line_count, line_count - unaccounted_lines from " ~ relation
        ~ " where unaccounted_lines != 0 order by source_file limit 1"
    ) -%}
    {%- if found.rows | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set file, line_count, accounted = found.rows[0] -%}
    {%- set counts = "(" ~ line_count ~ " lines of text, " ~ accounted
        ~ " read as its header, rows and quarantined lines)" -%}
    {#- The quarantined record that spans lines: the reader numbers it by record, so
        its first line of text is looked up in the plain lines from there on. -#}
    {%- set opening = run_query(
        "select source_line_number, split_part(replace(raw_line, chr(13), chr(10)), chr(10), 1)"
        ~ " from " ~ ref('stg_transactions__unreadable_rows')
        ~ " where source_file = " ~ sql_string(file) ~ " and rejection_reason = 'malformed_quotes'"
        ~ " order by (raw_line like '%' || chr(10) || '%' or raw_line like '%' || chr(13) || '%') desc,"
        ~ " source_line_number limit 1"
    ) if adapter.type() != 'spark' else none -%}
    {%- if not opening or opening.rows | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            file ~ ": the CSV reader did not account for every line of the file " ~ counts
            ~ ". Check it for a quote that is never closed (a quote inside a field is written twice: \"\")."
        ) }}
    {%- endif -%}
    {%- set record_line, first_text = opening.rows[0] -%}
    {%- set line = run_query(
        "select coalesce(min(line_number), " ~ record_line ~ ") from ("
        ~ " select line, row_number() over () as line_number from " ~ plain_lines([file]) ~ ")"
        ~ " where line_number >= " ~ record_line ~ " and line = " ~ sql_string(first_text)
    ).columns[0].values()[0] -%}
    {{ exceptions.raise_compiler_error(
        file ~ ", line " ~ line ~ ": a quoted field opens there and is never closed where it should be,"
        ~ " so the reader takes the " ~ (line_count - accounted) ~ " lines after it for part of that field "
        ~ counts ~ ". Close or remove that quote (a quote inside a field is written twice: \"\") and run again."
    ) }}
{% endmacro %}
