-- Every input row is either a valid transaction or a rejected one: none vanish,
-- none are counted twice. The input rows are the rows the reader split, numbered
-- 1..n in each file as they were read (a gap would be a lost row), plus the lines
-- it could not split (stg_transactions__unreadable_rows). And every file's lines of
-- text, counted as plain text apart from the CSV reader, are its header, its rows
-- (with the lines their quoted line breaks span) and its unreadable lines
-- (stg_transactions__input_files), so no line hides inside a quote.
-- Returns a row (a failure) when the counts disagree.
with

checked_rows as (

    select
        source_file,
        source_row_number
    from {{ ref('stg_transactions__rows') }}

),

unreadable_rows as (

    select count(*) as row_count
    from {{ ref('stg_transactions__unreadable_rows') }}

),

valid_transactions as (

    -- An order sums its lines: count the rows it stands for.
    select coalesce(sum(line_count), 0) as row_count
    from {{ ref('stg_transactions__transactions') }}

),

rejected_transactions as (

    select count(*) as row_count
    from {{ ref('rejected_transactions') }}

),

files as (

    select
        source_file,
        count(*) as row_count,
        max(source_row_number) as last_row_number
    from checked_rows
    group by source_file

),

input_files as (

    select
        source_file,
        rows_read,
        unaccounted_lines
    from {{ ref('stg_transactions__input_files') }}

),

files_not_accounted_for as (

    select count(*) as file_count
    from input_files
    full outer join files on input_files.source_file = files.source_file
    where
        input_files.unaccounted_lines != 0
        or coalesce(input_files.rows_read, -1) != coalesce(files.row_count, 0)

),

readable_rows as (

    select
        coalesce(sum(row_count), 0) as row_count,
        coalesce(sum(last_row_number), 0) as numbered_rows
    from files

),

final as (

    select
        valid_transactions.row_count as valid_rows,
        rejected_transactions.row_count as rejected_rows,
        files_not_accounted_for.file_count as files_not_accounted_for,
        readable_rows.row_count + unreadable_rows.row_count as raw_rows,
        readable_rows.numbered_rows + unreadable_rows.row_count as numbered_rows
    from readable_rows
    cross join files_not_accounted_for
    cross join unreadable_rows
    cross join valid_transactions
    cross join rejected_transactions

)

select * from final
where
    raw_rows != valid_rows + rejected_rows
    or numbered_rows != raw_rows
    or files_not_accounted_for > 0
