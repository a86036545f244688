-- Every input row is either a valid transaction or a rejected one: none vanish,
-- none are counted twice. Returns a row (a failure) when the counts disagree.
with

raw_transactions as (

    select count(*) as row_count
    from {{ source('transactions', 'raw_transactions') }}

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
        raw_transactions.row_count as raw_rows,
        valid_transactions.row_count as valid_rows,
        rejected_transactions.row_count as rejected_rows
    from raw_transactions
    cross join valid_transactions
    cross join rejected_transactions

)

select * from final
where raw_rows != valid_rows + rejected_rows
