"""SQL that parses an export's text fields into typed columns and names every broken rule.

Built from the contract, run by DuckDB over a whole file at once: no Python row loops.
"""

from __future__ import annotations

from .contract import (
    BOOLEAN,
    DATE,
    DIGITS,
    ENUM,
    INTEGER,
    MONEY,
    TIMESTAMP,
    Column,
    Entity,
)

# Accepted shapes; a value of the shape is then cast (fast) rather than tried against each
# strptime format in turn (slow when most attempts fail).
TIMESTAMP_SHAPE = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2} [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
DATE_SHAPE = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}|[0-9]{8}"
# DuckDB's cast alone would take `1.5` (as 2), `1e3`, `0x10` and `1_0` for integers, and drop
# every comma of an amount (`12,50` as 1250): only these shapes are cast.
INTEGER_SHAPE = r"[-+]?[0-9]+"
# A leading yuan sign (and a space after it), then digits, in groups of three after the first
# when separated: `¥1,299.00`, `￥ 35`, `-5.00`.
MONEY_SHAPE = r"-?[¥￥]? ?-?([0-9]+|[1-9][0-9]{0,2}(,[0-9]{3})+)([.][0-9]{1,2})?"
TRUE_LABELS = ("是", "true", "1", "y", "yes")
FALSE_LABELS = ("否", "false", "0", "n", "no")
PHONE_MASK = r"^(\d{3})\d*(\d{4})$"


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _one_of(text: str, values: tuple[str, ...]) -> str:
    """`text` is one of `values`, as a list lookup: DuckDB plans `in (…)` over constants as
    a join, which does not keep reading order, and the loader numbers rows by that order."""
    return f"list_contains([{', '.join(map(quote, values))}], {text})"


def _parsed(column: Column, text: str) -> str:
    """Expression of the typed value; NULL when empty or unparseable."""
    if column.kind == INTEGER:
        return (
            f"case when regexp_full_match({text}, '{INTEGER_SHAPE}') "
            f"then try_cast({text} as integer) end"
        )
    if column.kind == MONEY:
        return (
            f"case when regexp_full_match({text}, '{MONEY_SHAPE}') "
            f"then try_cast({_money_text(text)} as decimal(18,2)) end"
        )
    if column.kind == TIMESTAMP:
        return (
            f"case when regexp_full_match({text}, '{TIMESTAMP_SHAPE}') "
            f"then try_cast(replace({text}, '/', '-') as timestamp) end"
        )
    if column.kind == DATE:
        return (
            f"case when regexp_full_match({text}, '{DATE_SHAPE}') then try_cast("
            f"case when length({text}) = 8 then substr({text}, 1, 4) || '-' || "
            f"substr({text}, 5, 2) || '-' || substr({text}, 7, 2) "
            f"else replace({text}, '/', '-') end as date) end"
        )
    if column.kind == BOOLEAN:
        return (
            f"case when {_one_of(f'lower({text})', TRUE_LABELS)} then true "
            f"when {_one_of(f'lower({text})', FALSE_LABELS)} then false end"
        )
    if column.kind == ENUM:
        return f"case when {_one_of(text, column.values)} then {text} end"
    if column.kind == DIGITS:
        return f"case when regexp_full_match({text}, '[0-9]{{10,20}}') then {text} end"
    return text


def _money_text(text: str) -> str:
    """An amount of MONEY_SHAPE as a number: without its yuan sign, space and separators."""
    return f"replace(replace(replace(replace({text}, '¥', ''), '￥', ''), ' ', ''), ',', '')"


def _problems(column: Column, text: str, value: str) -> list[str]:
    """SQL expressions, each the text of one broken rule or NULL."""
    name = column.name
    shown = f"left({text}, 40)"
    problems = []
    if column.required:
        problems.append(f"case when {text} is null then '{name}: required value is missing' end")
    if column.kind == DIGITS:
        problems.append(
            f"case when {text} is not null and {value} is null then "
            f"'{name}: ' || {shown} || ' is not 10-20 digits' || "
            f"case when regexp_matches({text}, '[eE][+]') "
            f"then ' (a spreadsheet turned it into a number; re-export it as text)' else '' end end"
        )
    elif column.kind == MONEY:
        # Of the shape but beyond decimal(18,2) (16 digits before the point) is no amount either.
        problems.append(
            f"case when {text} is not null and {value} is null then '{name}: ' || {shown} || "
            f"' is not an amount in yuan' "
            f"when {value} < 0 then '{name}: negative amount ' || {shown} end"
        )
    elif column.kind in (INTEGER, TIMESTAMP, DATE, BOOLEAN):
        kind = {INTEGER: "an integer", TIMESTAMP: "a time", DATE: "a date", BOOLEAN: "a boolean"}
        problems.append(
            f"case when {text} is not null and {value} is null then "
            f"'{name}: ' || {shown} || ' is not {kind[column.kind]}' end"
        )
    elif column.kind == ENUM:
        problems.append(
            f"case when {text} is not null and {value} is null then "
            f"'{name}: unknown value ' || {shown} || "
            f"' (expected one of {'/'.join(column.values)})' end"
        )
    if column.min_value is not None:
        problems.append(
            f"case when {value} < {column.min_value} then "
            f"'{name}: ' || {value} || ' is below {column.min_value}' end"
        )
    if column.max_value is not None:
        problems.append(
            f"case when {value} > {column.max_value} then "
            f"'{name}: ' || {value} || ' is above {column.max_value}' end"
        )
    return problems


def _trimmed(field: str) -> str:
    """The field without surrounding ASCII spaces, NULL when nothing is left. Only a value
    that starts or ends with a space is trimmed: DuckDB's trim() copies every value it is
    given, which was 30% of parsing a file of orders."""
    return (
        f"nullif(case when prefix({field}, ' ') or suffix({field}, ' ') "
        f"then trim({field}, ' ') else {field} end, '')"
    )


def _text(index: int) -> str:
    return f"_t{index}"


def parse_select(
    entity: Entity, columns: list[str], source: str, keep: list[str] = (), nul: bool = False
) -> str:
    """A select over `source` (text columns _c1.._cN in file order) giving the contract's
    typed columns, `_extra` (unknown columns as JSON), `_reason` (every broken rule, or NULL),
    the row's raw text as JSON for quarantine (`_raw_record`, `_raw_record_masked`; NULL on
    rows that break no rule, so good rows carry no copy of their text) and the `keep`
    columns. With `nul`, a field holding a NUL character is a broken rule too (checked only
    in files that hold one: it costs every file's parsing 4%)."""
    position = {name: index for index, name in enumerate(columns, start=1)}
    typed, problems = [], []
    for column in entity.columns:
        text = _text(position[column.name]) if column.name in position else "cast(null as varchar)"
        value = _parsed(column, text)
        typed.append(f"{value} as {column.name}")
        problems.extend(_problems(column, text, value))
    if nul:
        problems += [
            f"case when contains(_c{index}, chr(0)) then '{name}: a NUL character' end"
            for name, index in position.items()
        ]
    known = {column.name for column in entity.columns}
    extra_pairs = [
        f"{quote(name)}, _c{index}" for name, index in position.items() if name not in known
    ]
    extra = f"json_object({', '.join(extra_pairs)})" if extra_pairs else "cast(null as json)"
    reason = f"nullif(concat_ws('; ', {', '.join(problems)}), '')" if problems else "null"
    raw = ", ".join([f"_c{index}" for index in position.values()] + list(keep))
    texts = ", ".join(f"{_trimmed(f'_c{index}')} as {_text(index)}" for index in position.values())
    outputs = [column.name for column in entity.columns] + ["_extra", "_reason"]
    records = [
        f"case when _reason is not null then {raw_record_sql(entity, columns, masked)} end "
        f"as {name}"
        for masked, name in ((False, "_raw_record"), (True, "_raw_record_masked"))
    ]
    return (
        f"with texts as (select {raw}, {texts} from {source}),\n"
        "parsed as (select\n    "
        + ",\n    ".join(typed)
        + f",\n    {extra} as _extra,\n    {reason} as _reason,\n    {raw}\nfrom texts)\n"
        + f"select {', '.join(outputs + records + list(keep))} from parsed"
    )


def raw_record_sql(entity: Entity, columns: list[str], masked: bool) -> str:
    """JSON of a row's raw text fields by column name. Masked: a phone keeps at most its first
    3 and last 4 digits, an address is dropped (what the serving database may show)."""
    personal = {column.name: column for column in entity.columns if column.personal}
    pairs = []
    for index, name in enumerate(columns, start=1):
        field = f"_c{index}"
        if masked and name in personal:
            if "phone" not in name:
                continue
            field = (
                f"case when regexp_full_match(trim({field}), '[0-9]{{7,}}') then "
                f"regexp_replace(trim({field}), '{PHONE_MASK}', '\\1****\\2') "
                f"when regexp_full_match(trim({field}), '[0-9]{{3}}[*]+[0-9]{{4}}') "
                f"then trim({field}) end"
            )
        pairs.append(f"{quote(name)}, {field}")
    return f"json_object({', '.join(pairs)})"
