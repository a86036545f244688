{#
    What the project knows about the input file(s) and how it reads them. The
    reader never guesses: the CSV dialect is the one the vars name (`csv_delimiter`,
    `input_encoding`, `max_line_bytes`), each file's header is read on its own, and
    a line that cannot be split into the header's fields is quarantined by
    stg_transactions__unreadable_rows, never patched up. Every refusal is one
    sentence that names the file, the line or the column, and the var that fixes it.
#}

{#-
    The expression with every Unicode space trimmed from both ends (tab, no-break
    space, ideographic space, zero-width space, BOM, ...), not only ' '. A regular
    expression: DuckDB's trim() with a list of characters costs 3x the whole
    features build on ten million rows (benchmarks/features_vs_duckdb.py).
-#}
{% macro trim_unicode_whitespace(expression) -%}
    {{- adapter.dispatch('trim_unicode_whitespace', 'clv')(expression) -}}
{%- endmacro %}

{% macro unicode_whitespace_pattern() -%}
    {%- set space = '[\\s\\p{Z}\\x{0b}\\x{85}\\x{200b}\\x{feff}]' -%}
    {{- return('^' ~ space ~ '+|' ~ space ~ '+$') -}}
{%- endmacro %}

{#- An id that starts and ends with a printable ASCII character has nothing to trim
    (every space the pattern knows is below 33 or above 126), and most ids do: they
    skip the regex, 0.6 s of each pass over ten million rows. -#}
{% macro default__trim_unicode_whitespace(expression) -%}
    case
        when
            ascii({{ expression }}) between 33 and 126
            and ascii(right({{ expression }}, 1)) between 33 and 126
            then {{ expression }}
        else regexp_replace({{ expression }}, '{{ unicode_whitespace_pattern() }}', '', 'g')
    end
{%- endmacro %}

{#- Spark replaces every match, and a raw literal keeps the backslashes for Java's regex. -#}
{% macro spark__trim_unicode_whitespace(expression) -%}
    regexp_replace({{ expression }}, r'{{ unicode_whitespace_pattern() }}', '')
{%- endmacro %}


{#-
    Marks a CTE that several parts of a query read, so that each evaluates it again
    rather than DuckDB storing it once: storing every checked row of the file cost
    more than reading the file again (ten million rows: 8.4 s -> 6.9 s; fifty
    million, past memory_limit: 70 s -> 55 s). Spark inlines a CTE anyway.
-#}
{% macro inlined_cte() -%}
    {{- adapter.dispatch('inlined_cte', 'clv')() -}}
{%- endmacro %}

{% macro default__inlined_cte() -%}{%- endmacro %}

{% macro duckdb__inlined_cte() -%}
    not materialized
{%- endmacro %}


{#- The file's columns as one comparable value (a struct), for finding identical rows. -#}
{% macro row_of(columns) -%}
    {{- adapter.dispatch('row_of', 'clv')(columns) -}}
{%- endmacro %}

{% macro default__row_of(columns) -%}
    row({% for name in columns %}{{ sql_identifier(name) }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro spark__row_of(columns) -%}
    struct({% for name in columns %}{{ sql_identifier(name) }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}


{#-
    An ISO date or datetime as the wall time the file writes: an offset after the time
    (Z, UTC, +02:00, -0400) is dropped, so a purchase falls on the day the file says, on
    either engine. DuckDB's cast drops it already; Spark's would move the time to UTC
    and, near midnight, the purchase to another day.
-#}
{% macro parse_iso_timestamp(expression) -%}
    {{- adapter.dispatch('parse_iso_timestamp', 'clv')(expression) -}}
{%- endmacro %}

{% macro default__parse_iso_timestamp(expression) -%}
    {{ try_cast(expression, 'timestamp') }}
{%- endmacro %}

{% macro spark__parse_iso_timestamp(expression) -%}
    {%- set time_and_offset = '([0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?) ?(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$' -%}
    {{ try_cast("regexp_replace(trim(" ~ expression ~ "), " ~ sql_string(time_and_offset) ~ ", '$1')", 'timestamp') }}
{%- endmacro %}


{#-
    A text as a timestamp in the strptime format of the var transaction_date_format
    (e.g. '%d/%m/%Y'); null where it does not match.
-#}
{% macro parse_timestamp(expression, format) -%}
    {{- adapter.dispatch('parse_timestamp', 'clv')(expression, format) -}}
{%- endmacro %}

{% macro default__parse_timestamp(expression, format) -%}
    try_strptime(trim({{ expression }}), {{ sql_string(format) }})
{%- endmacro %}

{#- Spark's patterns are Java's: each strptime directive is translated, letters quoted. -#}
{% macro spark__parse_timestamp(expression, format) -%}
    {%- set directives = {'Y': 'yyyy', 'y': 'yy', 'm': 'MM', 'd': 'dd', 'H': 'HH', 'I': 'hh',
        'M': 'mm', 'S': 'ss', 'f': 'SSSSSS', 'p': 'a', 'b': 'MMM', 'B': 'MMMM', 'j': 'DDD', '%': "'%'"} -%}
    {%- set parts = [] -%}
    {%- set tokens = modules.re.findall('%.|[A-Za-z]+|[^%A-Za-z]+', format) -%}
    {%- for token in tokens -%}
        {%- if token.startswith('%') and token[1:] in directives -%}
            {%- do parts.append(directives[token[1:]]) -%}
        {%- elif token.startswith('%') -%}
            {{ exceptions.raise_compiler_error(
                "The var transaction_date_format uses " ~ token ~ ", which the Spark target cannot translate;"
                ~ " use %Y %y %m %d %H %I %M %S %f %p %b %B %j and literal text."
            ) }}
        {%- elif token.isalpha() -%}
            {%- do parts.append("'" ~ token.replace("'", "''") ~ "'") -%}
        {%- else -%}
            {%- do parts.append(token.replace("'", "''")) -%}
        {%- endif -%}
    {%- endfor -%}
    try_to_timestamp(trim({{ expression }}), {{ sql_string(parts | join('')) }})
{%- endmacro %}


{#-
    'parquet' for .parquet and .pq, else 'csv' (.csv, .txt, .tsv, .csv.gz, ...). A workbook
    or another format read as CSV would only show its bytes as a header: it is named.
-#}
{% macro transactions_file_format(path) -%}
    {%- set lowered = path | lower -%}
    {%- set others = {'.xlsx': 'an Excel workbook', '.xlsm': 'an Excel workbook', '.xls': 'an Excel workbook',
        '.xlsb': 'an Excel workbook', '.ods': 'a spreadsheet', '.numbers': 'a spreadsheet',
        '.json': 'JSON', '.jsonl': 'JSON', '.ndjson': 'JSON', '.zip': 'a zip archive',
        '.avro': 'Avro', '.orc': 'ORC', '.feather': 'Arrow', '.arrow': 'Arrow'} -%}
    {%- for extension, kind in others.items() if execute and lowered.endswith(extension) -%}
        {{ exceptions.raise_compiler_error(
            "The var transactions_path names " ~ path ~ ", which is " ~ kind ~ " (" ~ extension
            ~ "): the input is CSV (.csv, also gzipped) or Parquet (.parquet, .pq); save it as one of those."
        ) }}
    {%- endfor -%}
    {{- return('parquet' if lowered.endswith('.parquet') or lowered.endswith('.pq') else 'csv') -}}
{%- endmacro %}


{#- The read_csv options every read of the input shares, so all reads skip the same lines. -#}
{% macro csv_dialect() -%}
    delim = {{ sql_string(var('csv_delimiter')) }},
    quote = '"',
    escape = '"',
    encoding = {{ sql_string(var('input_encoding')) }},
    max_line_size = {{ number_var('max_line_bytes', whole=true) }}
{%- endmacro %}


{#-
    The first line of each CSV file, parsed with the input's dialect: {file: {'error': the
    reader's error on line 1 or none, 'values': its fields}}, without the files that have
    no line. Each file is read on its own, its first line only, but all in one query: a
    query per file cost 60-80 ms (DuckDB binds 1,024 placeholder columns in 20 ms, and
    dbt adds its round trip), so 305 daily files spent 25 s on headers in each model.

    Most headers are narrow: each file is read 16 columns wide, then 128, twice: strictly
    (as every read of the input) and leniently (strict_mode off: extra fields are cut,
    not refused; an empty field is '', not null). The strict row is line 1 only if the
    lenient read of line 1 has fewer fields than the width and the same values; else the
    strict reader may have refused line 1 and returned a later line. DuckDB's rejects
    tables cannot tell: a read that `limit 1` stops records no errors. A file neither
    width settles is read 1,024 columns wide with the rejects tables, as before.

    Every model that reads the input asks (one asks twice), so the first answer is kept
    for the others in a database in memory, which every model's connection sees as long
    as dbt's DuckDB instance lives, under the dbt invocation's id and the dialect: the
    next build reads the files again.
-#}
{% macro csv_first_lines(files) %}
    {%- set cache_key = sql_string(invocation_id ~ ' ' ~ csv_dialect()) -%}
    {%- set cached = run_query(
        "attach if not exists ':memory:' as clv_header_cache;"
        ~ " create table if not exists clv_header_cache.first_lines"
        ~ " (cache_key varchar, file varchar, error_type varchar, line_values varchar[]);"
        ~ " delete from clv_header_cache.first_lines where cache_key != " ~ cache_key ~ ";"
        ~ " select file, error_type, line_values from clv_header_cache.first_lines"
        ~ " where cache_key = " ~ cache_key
    ) -%}
    {%- set lines = {} -%}
    {%- for row in cached.rows if row[0] in files -%}
        {#- dbt hands a list over as its JSON text. -#}
        {%- do lines.update({row[0]: {'error': row[1], 'values': fromjson(row[2])}}) -%}
    {%- endfor -%}
    {%- set state = {'pending': files | reject('in', lines) | list} -%}
    {#- DuckDB gives each read a buffer of 16 lines of max_line_size, 32 MB at least: eight
        reads at a time hold 256 MB at most; a longer line limit reads one file at a time. -#}
    {%- set at_once = 8 if number_var('max_line_bytes', whole=true) <= 2097152 else 1 -%}
    {#- The filter is applied as the loop goes: 128 wide only for the files 16 left. -#}
    {%- for width in [16, 128] if state.pending -%}
        {%- set pending = state.pending -%}
        {%- set names = csv_placeholder_names(width) -%}
        {%- set options = csv_placeholder_options(names) -%}
        {%- set statements = [
            "create or replace temp macro clv_header_strict(file) as table select * from read_csv(file, "
                ~ options ~ ", ignore_errors = true)",
            "create or replace temp macro clv_header_lenient(file) as table select * from read_csv(file, "
                ~ options ~ ", ignore_errors = true, strict_mode = false, nullstr = 'clv: no null')",
            "create or replace temp table clv_header_strict_lines (file_index integer, "
                ~ names | join(' varchar, ') ~ " varchar)",
            "create or replace temp table clv_header_lenient_lines as select * from clv_header_strict_lines",
        ] -%}
        {%- for chunk in pending | batch(at_once) -%}
            {%- set first = loop.index0 * at_once -%}
            {%- for read in ['strict', 'lenient'] -%}
                {%- set reads = [] -%}
                {%- for file in chunk -%}
                    {%- do reads.append("(select " ~ (first + loop.index0) ~ ", * from clv_header_" ~ read
                        ~ "(" ~ sql_string(file) ~ ") limit 1)") -%}
                {%- endfor -%}
                {%- do statements.append("insert into clv_header_" ~ read ~ "_lines " ~ reads | join(" union all ")) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- do statements.append(
            "create or replace temp table clv_header_settled as select strict.*"
            ~ " from clv_header_strict_lines as strict"
            ~ " inner join clv_header_lenient_lines as lenient using (file_index)"
            ~ " where lenient." ~ names[-1] ~ " is null"
            ~ " and [strict." ~ names | join(', strict.') ~ "] is not distinct from"
            ~ " [nullif(lenient." ~ names | join(", ''), nullif(lenient.") ~ ", '')]"
        ) -%}
        {%- do statements.append(
            "insert into clv_header_cache.first_lines select " ~ cache_key ~ ", "
            ~ sql_string_list(pending) ~ "[file_index + 1], null, [" ~ names | join(', ') ~ "]"
            ~ " from clv_header_settled"
        ) -%}
        {%- do statements.append("select * from clv_header_settled") -%}
        {%- set settled = [] -%}
        {%- for row in run_query(statements | join(';\n')).rows -%}
            {%- do settled.append(pending[row[0]]) -%}
            {%- do lines.update({pending[row[0]]: {'error': none, 'values': row.values()[1:] | list}}) -%}
        {%- endfor -%}
        {%- do state.update({'pending': pending | reject('in', settled) | list}) -%}
    {%- endfor -%}

    {%- if state.pending -%}
        {%- set names = csv_placeholder_names(1024) -%}
        {%- set statements = [
            "create or replace temp macro clv_header_wide(file) as table select * from read_csv(file, "
                ~ csv_placeholder_options(names)
                ~ ", store_rejects = true, rejects_table = 'clv_header_errors', rejects_scan = 'clv_header_scans')",
            "create or replace temp table clv_header_wide_lines (file_index integer, error_type varchar, "
                ~ names | join(' varchar, ') ~ " varchar)",
        ] -%}
        {%- for file in state.pending -%}
            {%- do statements.append(
                "drop table if exists temp.clv_header_errors; drop table if exists temp.clv_header_scans;"
                ~ " create or replace temp table clv_header as select * from clv_header_wide("
                ~ sql_string(file) ~ ") limit 1; insert into clv_header_wide_lines select " ~ loop.index0
                ~ ", (select min(error_type) from temp.clv_header_errors where line = 1), * from clv_header"
            ) -%}
        {%- endfor -%}
        {%- do statements.append(
            "insert into clv_header_cache.first_lines select " ~ cache_key ~ ", "
            ~ sql_string_list(state.pending) ~ "[file_index + 1], error_type, [" ~ names | join(', ') ~ "]"
            ~ " from clv_header_wide_lines"
        ) -%}
        {%- do statements.append("select * from clv_header_wide_lines") -%}
        {%- for row in run_query(statements | join(';\n')).rows -%}
            {%- do lines.update({state.pending[row[0]]: {'error': row[1], 'values': row.values()[2:] | list}}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(lines) }}
{% endmacro %}

{#- f1 .. fN: the placeholder columns a header is read into. -#}
{% macro csv_placeholder_names(width) %}
    {%- set names = [] -%}
    {%- for position in range(1, width + 1) -%}
        {%- do names.append('f' ~ position) -%}
    {%- endfor -%}
    {{ return(names) }}
{% endmacro %}

{#- The read_csv options of a header read into the placeholder columns `names`. -#}
{% macro csv_placeholder_options(names) %}
    {%- set columns = [] -%}
    {%- for name in names -%}
        {%- do columns.append("'" ~ name ~ "': 'varchar'") -%}
    {%- endfor -%}
    {{ return(
        "header = false, auto_detect = false, null_padding = true, parallel = false, columns = {"
        ~ columns | join(', ') ~ "}, " ~ csv_dialect()
    ) }}
{% endmacro %}


{#-
    Column names from the first line of one CSV file (`line`, from csv_first_lines; none
    when the file has no line), refused in one sentence when they cannot be the header.
-#}
{% macro csv_header(file, line) %}
    {%- if line is none -%}
        {{ exceptions.raise_compiler_error(
            file ~ " is empty: it has no header line naming its columns."
        ) }}
    {%- endif -%}
    {%- if line.error in ('INVALID ENCODING', 'INVALID UNICODE') -%}
        {{ exceptions.raise_compiler_error(
            file ~ " is not " ~ var('input_encoding') ~ " text (line 1 does not decode):"
            ~ " set the var input_encoding to the file's encoding (utf-8, utf-16 or latin-1)."
        ) }}
    {%- elif line.error == 'TOO MANY COLUMNS' -%}
        {{ exceptions.raise_compiler_error(
            "The header of " ~ file ~ " has more than 1024 columns; keep only the columns the forecast needs."
        ) }}
    {%- elif line.error -%}
        {{ exceptions.raise_compiler_error(
            "The header line of " ~ file ~ " cannot be read (" ~ line.error | lower
            ~ "); check the vars csv_delimiter, input_encoding and max_line_bytes."
        ) }}
    {%- endif -%}
    {%- set names = line['values'] | reject('none') | list -%}
    {%- if '\x00' in names | join('') -%}
        {{ exceptions.raise_compiler_error(
            file ~ " holds NUL bytes, as UTF-16 text does: set the var input_encoding to utf-16."
        ) }}
    {%- endif -%}
    {%- for name in names -%}
        {%- if names[:loop.index0] | select('equalto', name) | list -%}
            {{ exceptions.raise_compiler_error(
                "The header of " ~ file ~ " names the column '" ~ name ~ "' twice; give each column its own name."
            ) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{% endmacro %}


{#- Column names of one Parquet file. -#}
{% macro parquet_header(file) %}
    {%- set described = run_query("describe select * from read_parquet(" ~ sql_string(file) ~ ")") -%}
    {{ return(described.columns[0].values() | list) }}
{% endmacro %}


{#-
    {column name: 'number' or 'time'} for the input's columns that hold typed numbers
    or dates and times (Parquet's), as the rows are read: such a value has no marks or
    layout to read, so the vars decimal_separator, thousands_separator and
    transaction_date_format, which say how text writes them, do not apply. A CSV's
    columns are text: {}.
-#}
{% macro typed_input_columns(input) %}
    {%- if not execute or input.format != 'parquet' -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set typed = {} -%}
    {%- for name, type in adapter.dispatch('input_column_types', 'clv')(input) -%}
        {%- set type = type | lower -%}
        {%- if modules.re.match('(u?(tiny|small|big|huge)?int(eger)?|long|short|byte|float|real|double|decimal|numeric)\\b', type) -%}
            {%- do typed.update({name: 'number'}) -%}
        {%- elif type.startswith('date') or type.startswith('timestamp') -%}
            {%- do typed.update({name: 'time'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(typed) }}
{% endmacro %}

{#- [(column name, type)] of the rows read from the input's Parquet files. -#}
{% macro default__input_column_types(input) %}
    {{ return(column_types(run_query("describe select * from " ~ read_transactions(input)))) }}
{% endmacro %}

{% macro spark__input_column_types(input) %}
    {%- do run_query(
        "create or replace temporary view clv_input_types using parquet options (path " ~ sql_string(input.path) ~ ")"
    ) -%}
    {{ return(column_types(run_query("describe clv_input_types"))) }}
{% endmacro %}

{#- A describe's first two columns (name, type), row by row. -#}
{% macro column_types(described) %}
    {%- set pairs = [] -%}
    {%- for row in described.rows -%}
        {%- do pairs.append((row[0], row[1] | string)) -%}
    {%- endfor -%}
    {{ return(pairs) }}
{% endmacro %}


{#-
    {file: [column names]} for the files the path names, in file order. Refuses a
    path that names nothing (or a folder) in one sentence.
-#}
{% macro input_headers(path, format) %}
    {{- return(adapter.dispatch('input_headers', 'clv')(path, format)) -}}
{% endmacro %}

{% macro default__input_headers(path, format) %}
    {%- set files = run_query("select file from glob(" ~ sql_string(path) ~ ") order by file").columns[0].values() | list -%}
    {%- if not files -%}
        {%- set inside = run_query("select count(*) from glob(" ~ sql_string(path.rstrip('/') ~ '/*') ~ ")").columns[0].values()[0] -%}
        {%- if inside -%}
            {{ exceptions.raise_compiler_error(
                "The var transactions_path names the folder " ~ path ~ ", not a file:"
                ~ " name its files instead, e.g. " ~ path.rstrip('/') ~ "/*." ~ format ~ "."
            ) }}
        {%- endif -%}
        {{ exceptions.raise_compiler_error(
            "Transactions file not found: " ~ path
            ~ " (set the var transactions_path to a CSV or Parquet file, or a glob of them)."
        ) }}
    {%- endif -%}

    {%- set lines = csv_first_lines(files) if format == 'csv' else {} -%}
    {%- set headers = {} -%}
    {%- for file in files -%}
        {%- do headers.update({file: parquet_header(file) if format == 'parquet' else csv_header(file, lines.get(file))}) -%}
    {%- endfor -%}
    {{ return(headers) }}
{% endmacro %}

{#-
    Spark expands the path (a glob, a folder, a cloud URI) itself, and a read of
    many files takes the first one's header: the path is one "file" here, and its
    files must share their columns. Listing the files would mean a scan of them all.
-#}
{% macro spark__input_headers(path, format) %}
    {%- do run_query(
        "create or replace temporary view clv_input_header using " ~ format
        ~ " options (path " ~ sql_string(path)
        ~ (", header 'true', " ~ spark_csv_dialect() if format == 'csv' else '') ~ ")"
    ) -%}
    {{ return({path: run_query("select * from clv_input_header limit 0").column_names | list}) }}
{% endmacro %}

{#- The CSV dialect options of Spark's reader, from the same vars as csv_dialect(). -#}
{% macro spark_csv_dialect() -%}
    sep {{ sql_string(var('csv_delimiter')) }},
    encoding {{ sql_string(var('input_encoding')) }},
    quote '"',
    escape '"',
    multiLine 'false',
    inferSchema 'false',
    mode 'PERMISSIVE',
    columnNameOfCorruptRecord '_corrupt_record'
{%- endmacro %}


{#
    Returns {'path', 'format', 'files', 'columns', 'mapped', 'groups'}: the files the
    var transactions_path matches, every column name any of them has, our column
    names mapped onto the file's (optional ones only when the files have them), and
    the files grouped by identical header (each group is read with its own columns).
    At parse time (execute is false) nothing is read.
#}
{% macro transactions_input() %}
    {%- set path = var('transactions_path') | string -%}
    {%- set format = transactions_file_format(path) -%}
    {%- set required = {
        'customer_id': var('customer_id_column'),
        'transaction_date': var('transaction_date_column'),
    } -%}
    {%- set optional = {'transaction_id': var('transaction_id_column')} -%}
    {#- Order lines: amount = quantity x unit price, so the quantity is required too. -#}
    {%- if var('unit_price_column') -%}
        {%- if not var('quantity_column') -%}
            {{ exceptions.raise_compiler_error(
                "The var unit_price_column needs the var quantity_column (amount = quantity x unit price):"
                ~ " set it to the column that holds each line's quantity."
            ) }}
        {%- endif -%}
        {%- do required.update({'unit_price': var('unit_price_column'), 'quantity': var('quantity_column')}) -%}
    {%- else -%}
        {%- do required.update({'amount': var('amount_column')}) -%}
        {%- do optional.update({'quantity': var('quantity_column')}) -%}
    {%- endif -%}
    {%- if var('order_id_column') -%}
        {%- do required.update({'order_id': var('order_id_column')}) -%}
    {%- endif -%}
    {%- if not execute -%}
        {{ return({'path': path, 'format': format, 'files': [path], 'columns': [],
                   'mapped': required, 'groups': []}) }}
    {%- endif -%}

    {%- set headers = input_headers(path, format) -%}
    {%- set files = headers.keys() | list -%}

    {%- set groups = {} -%}
    {%- for file in files -%}
        {%- set names = headers[file] -%}
        {%- set key = names | join('\x1f') -%}
        {%- if key not in groups -%}
            {%- do groups.update({key: {'columns': names, 'files': []}}) -%}
        {%- endif -%}
        {%- do groups[key]['files'].append(file) -%}
    {%- endfor -%}

    {%- set mapped = {} -%}
    {%- for ours, theirs in required.items() -%}
        {%- for file in files if theirs not in headers[file] -%}
            {%- set columns = headers[file] -%}
            {#- One column that holds another separator: the file is not comma-separated. -#}
            {%- set separators = [';', '\t', '|', ','] | reject('equalto', var('csv_delimiter'))
                | select('in', columns[0]) | list if columns | length == 1 else [] -%}
            {#- Names are matched exactly: one that differs in case or spaces is named, not taken. -#}
            {%- set alike = [] -%}
            {%- for column in columns if column | trim | lower == theirs | trim | lower -%}
                {%- do alike.append(column) -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error(
                "Required column '" ~ theirs ~ "' (var " ~ ours ~ "_column) is missing from "
                ~ file ~ ", which has the columns: " ~ columns | join(', ') ~ "."
                ~ (" Its header looks " ~ separators[0] | tojson ~ "-separated: set the var csv_delimiter to "
                   ~ separators[0] | tojson ~ "." if separators else "")
                ~ (" Its column " ~ alike[0] | tojson ~ " differs only in case or spaces: set the var "
                   ~ ours ~ "_column to " ~ alike[0] | tojson ~ "." if alike else "")
            ) }}
        {%- endfor -%}
        {%- do mapped.update({ours: theirs}) -%}
    {%- endfor -%}
    {%- for ours, theirs in optional.items() if theirs -%}
        {%- set with_it = [] -%}
        {%- set without_it = [] -%}
        {%- for file in files -%}
            {%- do (with_it if theirs in headers[file] else without_it).append(file) -%}
        {%- endfor -%}
        {%- if with_it and without_it -%}
            {{ exceptions.raise_compiler_error(
                "The column '" ~ theirs ~ "' (var " ~ ours ~ "_column) is in " ~ with_it[0]
                ~ " but not in " ~ without_it[0] ~ ": give every file the same columns,"
                ~ " or set the var " ~ ours ~ "_column to null to ignore the column."
            ) }}
        {%- endif -%}
        {%- if with_it -%}
            {%- do mapped.update({ours: theirs}) -%}
        {%- endif -%}
        {%- for column in headers[files[0]] if not with_it and column | trim | lower == theirs | trim | lower -%}
            {{ exceptions.raise_compiler_error(
                "The optional column '" ~ theirs ~ "' (var " ~ ours ~ "_column) is not in " ~ files[0]
                ~ ", but its column " ~ column | tojson ~ " differs only in case or spaces: set the var "
                ~ ours ~ "_column to " ~ column | tojson ~ " to use it, or to null to ignore it."
            ) }}
        {%- endfor -%}
    {%- endfor -%}

    {%- set columns = [] -%}
    {%- for group in groups.values() -%}
        {%- for name in group.columns if name not in columns -%}
            {%- do columns.append(name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return({'path': path, 'format': format, 'files': files, 'columns': columns,
               'mapped': mapped, 'groups': groups.values() | list}) }}
{% endmacro %}


{#
    SQL that reads every row of the input as text, plus `filename`. With
    quarantine=false, lines the reader cannot split are skipped (ignore_errors);
    with quarantine=true the same lines are recorded in the temporary tables
    clv_reject_errors / clv_reject_scans for stg_transactions__unreadable_rows.
    Both use the same dialect, so they agree on which lines those are.
#}
{% macro read_transactions(input, quarantine=false) %}
    {%- if not execute -%}
        {{ return("(select null as filename)") }}
    {%- endif -%}
    {%- if input.format == 'parquet' -%}
        {{ return("(select * from read_parquet(" ~ sql_string_list(input.files) ~ ", union_by_name = true, filename = true))") }}
    {%- endif -%}
    {%- set on_error = "store_rejects = true, rejects_table = 'clv_reject_errors', rejects_scan = 'clv_reject_scans'"
        if quarantine else "ignore_errors = true" -%}
    {%- set reads = [] -%}
    {%- for group in input.groups -%}
        {%- set columns = [] -%}
        {%- for name in group.columns -%}
            {%- do columns.append(sql_string(name) ~ ": 'varchar'") -%}
        {%- endfor -%}
        {%- do reads.append(
            "select * from read_csv(\n" ~ sql_string_list(group.files)
            ~ ",\nheader = true, auto_detect = false, filename = true,\ncolumns = {"
            ~ columns | join(",\n") ~ "},\n" ~ csv_dialect() ~ ",\n" ~ on_error ~ "\n)"
        ) -%}
    {%- endfor -%}
    {{ return("(\n" ~ reads | join("\nunion all by name\n") ~ "\n)") }}
{% endmacro %}


{#- The rejection boundary: rows dated after this are quarantined. -#}
{% macro as_of_date_or_run_date() %}
    {%- set as_of_date = date_var('as_of_date') -%}
    {%- if as_of_date -%}
        {{ as_of_date }}
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as date)
    {%- endif -%}
{% endmacro %}


{#- Pre-hook of stg_transactions__unreadable_rows: one read of the input that records the lines it cannot split. -#}
{% macro read_transactions_for_quarantine() %}
    {{- return(adapter.dispatch('read_transactions_for_quarantine', 'clv')()) -}}
{% endmacro %}

{#- Spark's reader keeps such rows itself (`_corrupt_record`): nothing to prepare. -#}
{% macro spark__read_transactions_for_quarantine() %}
    {{- return('') -}}
{% endmacro %}

{% macro default__read_transactions_for_quarantine() %}
    {%- set input = transactions_input() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    drop table if exists temp.clv_reject_errors;
    drop table if exists temp.clv_reject_scans;
    {%- if input.format == 'csv' %}
    {#- Every column is counted: DuckDB decodes only the columns a query reads, and
        a line that does not decode must be found wherever it is. -#}
    select count(columns(*)) from {{ read_transactions(input, quarantine=true) }}
    {%- else %}
    {#- The columns of DuckDB's rejects tables that the model reads, and no rows. #}
    create temp table clv_reject_errors (
        scan_id ubigint, file_id ubigint, line ubigint, error_type varchar,
        csv_line varchar, error_message varchar
    );
    create temp table clv_reject_scans (scan_id ubigint, file_id ubigint, file_path varchar)
    {%- endif %}
{% endmacro %}


{#- Post-hook of stg_transactions__unreadable_rows: a line that does not decode refuses the file. -#}
{% macro refuse_undecodable_input(relation) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set found = run_query(
        "select source_file, source_line_number, count(*) over () from " ~ relation
        ~ " where rejection_reason = 'undecodable_line' order by source_file, source_line_number limit 1"
    ) -%}
    {%- if found.rows | length > 0 -%}
        {%- set row = found.rows[0] -%}
        {{ exceptions.raise_compiler_error(
            row[0] ~ " is not " ~ var('input_encoding') ~ " text: line " ~ row[1]
            ~ (" and " ~ (row[2] - 1) ~ " more lines do" if row[2] > 1 else " does") ~ " not decode."
            ~ " Set the var input_encoding to the file's encoding (utf-8, utf-16 or latin-1)."
        ) }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}


{#
    Every row the reader could split, numbered: the file's columns as text,
    `filename`, `input_row_number` (unique, increasing with the position in each
    file) and `row_number_in_file` (1 for the first row after each file's header).
#}
{% macro numbered_input_rows(input) %}
    {{- return(adapter.dispatch('numbered_input_rows', 'clv')(input)) -}}
{% endmacro %}

{% macro default__numbered_input_rows(input) %}
    {%- set in_file = 'input_row_number - min(input_row_number) over (partition by filename) + 1'
        if input.files | length > 1 else 'input_row_number' -%}
    {#- File order is the order a user sees: rows are numbered before anything reorders them. -#}
    {{ return(
        "(select *, " ~ in_file ~ " as row_number_in_file from (select *, row_number() over () as input_row_number from "
        ~ read_transactions(input) ~ "))"
    ) }}
{% endmacro %}

{% macro spark__numbered_input_rows(input) %}
    {%- set columns = [] -%}
    {%- for name in input.columns -%}
        {%- do columns.append(sql_identifier(name)) -%}
    {%- endfor -%}
    {#- Numbered after the unreadable rows are set aside, as DuckDB numbers the rows it splits. -#}
    {{ return(
        "(select " ~ columns | join(', ') ~ ", filename, input_row_number,"
        ~ " row_number() over (partition by filename order by input_row_number) as row_number_in_file"
        ~ " from " ~ spark_input_rows(input) ~ " where _corrupt_record is null)"
    ) }}
{% endmacro %}


{#
    Spark: every row of the input, with `filename`, the reader's `_corrupt_record` (the
    text of a row it could not split into the header's fields; null otherwise) and
    `input_row_number`, the row's monotonically_increasing_id: unique, and growing with
    the offset within a file, where numbering 1..n across files would sort every row
    in one task. Spark has no line numbers; a row's place in its file comes from a
    window per file. multiLine is off so that a file splits across workers: a quoted
    field that spans lines is read as unreadable rows.
#}
{% macro spark_input_rows(input) %}
    {%- if not execute -%}
        {{ return("(select null as filename, null as _corrupt_record, null as input_row_number)") }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for name in input.columns -%}
        {%- do columns.append(sql_identifier(name) ~ ' string') -%}
    {%- endfor -%}
    {%- if input.format == 'csv' -%}
        {%- do run_query(
            "create or replace temporary view clv_input (" ~ columns | join(', ') ~ ", _corrupt_record string)"
            ~ " using csv options (path " ~ sql_string(input.path) ~ ", header 'true', " ~ spark_csv_dialect() ~ ")"
        ) -%}
        {%- set corrupt = '' -%}
    {%- else -%}
        {%- do run_query(
            "create or replace temporary view clv_input using parquet options (path " ~ sql_string(input.path) ~ ")"
        ) -%}
        {%- set corrupt = ', cast(null as string) as _corrupt_record' -%}
    {%- endif -%}
    {{ return(
        "(select *" ~ corrupt ~ ", input_file_name() as filename,"
        ~ " monotonically_increasing_id() as input_row_number from clv_input)"
    ) }}
{% endmacro %}
