-- Every input row is either a valid transaction or a rejected one: none vanish,
-- none are counted twice. The rows are counted by a read of their own: the rows
-- the reader can split, plus the lines it cannot (stg_transactions__unreadable_rows).
-- Returns a row (a failure) when the counts disagree.
{%- set input = transactions_input() %}
{%- do source('transactions', 'raw_transactions') %}

with

readable_rows as (

    select count(*) as row_count
    from {{ read_transactions(input) }}

),

unreadable_rows as (

    select count(*) as row_count
    from {{ ref('stg_transactions__unreadable_rows') }}

),

valid_transactions as (

    select count(*) as row_count
    from {{ ref('stg_transactions__transactions') }}

),

rejected_transactions as (

    select count(*) as row_count
    from {{ ref('rejected_transactions') }}

),

final as (

    select
        valid_transactions.row_count as valid_rows,
        rejected_transactions.row_count as rejected_rows,
        readable_rows.row_count + unreadable_rows.row_count as raw_rows
    from readable_rows
    cross join unreadable_rows
    cross join valid_transactions
    cross join rejected_transactions

)

select * from final
where raw_rows != valid_rows + rejected_rows
