{#
    A sum of money (or quantities) that every run and engine gives alike: rounded
    to a millionth of a unit, far below any currency's smallest coin. A parallel
    engine adds doubles in no fixed order and the last bits of a sum follow that
    order: the same file built twice gave other features in the last bits, another
    early stop of a booster and so other forecasts for every customer; a purchase
    refunded in full netted to +-1e-14 rather than 0, a "buyer" of log spend -32.
    A sum of amounts of up to six decimals is exact this way up to about 1e9
    units; the rounded parts it is built from are summed and rounded again.
#}
{% macro sum_to_millionths(expression) -%}
    round(sum({{ expression }}), 6)
{%- endmacro %}
