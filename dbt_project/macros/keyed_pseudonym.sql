{% macro keyed_pseudonym(value, pads='pii_key') -%}
    {#- HMAC-SHA256 (RFC 2104) of a text `value`, as hex: sha256(outer pad || sha256(inner pad
        || value)), the pads read from the CTE `pads` (int_orders_current builds them from
        TRUSTWH_PII_KEY). Null for a null value. -#}
    sha256(
        (select {{ pads }}.outer_pad from {{ pads }})
        || unhex(sha256((select {{ pads }}.inner_pad from {{ pads }}) || encode({{ value }})))
    )
{%- endmacro %}
