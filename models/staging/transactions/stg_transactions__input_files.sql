{#-
    One row per input file: its lines of text, counted as plain text, beside what
    the CSV reader made of them. Every line is the header, a row (or a line of a
    quoted field that spans lines) or a quarantined line; a quote that is never
    closed where it should be swallows the lines after it, and the post-hook fails
    the build naming the line where it opens, so no line is ever lost unseen.
-#}
{{ config(
    materialized='table',
    pre_hook="{{ count_input_lines() }}",
    post_hook="{{ refuse_lines_hidden_by_a_quote(this) }}",
) }}
{%- set input = transactions_input() %}
{%- do source('transactions', 'raw_transactions') %}

with

file_lines as (

    {{ input_file_lines(input) }}

),

unreadable_rows as (

    select
        source_file,
        rejection_reason,
        raw_line
    from {{ ref('stg_transactions__unreadable_rows') }}

),

unreadable_lines as (

    -- An unterminated quote's text runs on over the lines it swallowed: those are
    -- exactly the lines this model exists to find, so it counts as one line.
    select
        source_file,
        count(*) as unreadable_lines,
        sum(
            case
                when rejection_reason = 'malformed_quotes' then 0
                else {{ continuation_lines('raw_line') }}
            end
        ) as unreadable_continuation_lines
    from unreadable_rows
    group by source_file

),

final as (

    select
        file_lines.source_file,
        file_lines.line_count,
        file_lines.rows_read,
        file_lines.row_continuation_lines,
        coalesce(unreadable_lines.unreadable_lines, 0) as unreadable_lines,
        file_lines.line_count - (
            1
            + file_lines.rows_read
            + file_lines.row_continuation_lines
            + coalesce(unreadable_lines.unreadable_lines, 0)
            + coalesce(unreadable_lines.unreadable_continuation_lines, 0)
        ) as unaccounted_lines
    from file_lines
    left join unreadable_lines on file_lines.source_file = unreadable_lines.source_file

)

select * from final
