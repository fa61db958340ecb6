"""The data source query engine: Notion filters compiled to predicates, sorts, and opaque cursors.

A query reads a data source's pages once and filters/sorts them in memory: at the sizes a video
pipeline reaches (thousands of rows) that is a few milliseconds and keeps Notion's semantics in one
place. Cursors encode the sort position of the next row (sort values + creation sequence), so paging
stays exact even when rows are edited or added between requests.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vidgen.notion.server.errors import body_validation_error, validation_error
from vidgen.notion.server.properties import STRING_TYPES, TEXT_TYPES, PropertySchema, Schema, plain_text
from vidgen.notion.server.store import PageRecord

Predicate = Callable[[PageRecord], bool]
MAX_COMPOUND_DEPTH = 3  # a top-level and/or with two nested levels, as Notion allows
MAX_PAGE_SIZE = 100

TEXT_FILTER_KEYS = frozenset({"title", "rich_text", "url", "email", "phone_number"})
TEXT_OPS = ("equals", "does_not_equal", "contains", "does_not_contain", "starts_with", "ends_with",
            "is_empty", "is_not_empty")  # fmt: skip
OPTION_OPS = ("equals", "does_not_equal", "is_empty", "is_not_empty")
NUMBER_OPS = ("equals", "does_not_equal", "greater_than", "less_than", "greater_than_or_equal_to",
              "less_than_or_equal_to", "is_empty", "is_not_empty")  # fmt: skip
DATE_OPS = ("equals", "before", "after", "on_or_before", "on_or_after", "is_empty", "is_not_empty",
            "past_week", "past_month", "past_year", "next_week", "next_month", "next_year", "this_week")  # fmt: skip
CHECKBOX_OPS = ("equals", "does_not_equal")
TIMESTAMPS = ("created_time", "last_edited_time")


# ------------------------------------------------------------------------------------ value access


def stored_value(page: PageRecord, prop: PropertySchema) -> Any:
    """The stored value if it was written under the property's current type, else None."""
    cell = page.values.get(prop.id)
    if cell is None or cell.get("t") != prop.type:
        return None
    return cell.get("v")


@dataclass(frozen=True)
class Moment:
    """A point in time plus whether it was written as a bare date (then day comparisons apply)."""

    ms: int
    date_only: bool

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.ms / 1000, tz=UTC).date()


def parse_moment(text: str) -> Moment:
    if len(text) == 10:
        day = date.fromisoformat(text)
        return Moment(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000), True)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Moment(int(moment.timestamp() * 1000), False)


def _accessor(prop: PropertySchema) -> Callable[[PageRecord], Any]:
    """A function giving the comparable value of `prop` on a page (None when empty)."""
    if prop.type in TEXT_TYPES:
        return lambda page: plain_text(stored_value(page, prop) or [])
    if prop.type in ("select", "status"):
        names = {o.id: o.name for o in prop.options}
        return lambda page: names.get(stored_value(page, prop) or "")
    if prop.type == "date":

        def date_of(page: PageRecord) -> Moment | None:
            value = stored_value(page, prop)
            return parse_moment(value["start"]) if value else None

        return date_of
    if prop.type == "checkbox":
        return lambda page: bool(stored_value(page, prop))
    if prop.type == "created_time":
        return lambda page: Moment(page.created_ms, False)
    if prop.type == "last_edited_time":
        return lambda page: Moment(page.edited_ms, False)
    return lambda page: stored_value(page, prop)  # number, url, email, phone_number


# ------------------------------------------------------------------------------------------ filters


def compile_filter(raw: Any, schema: Schema, path: str = "body.filter", depth: int = 0) -> Predicate:
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    compound = [key for key in ("and", "or") if key in raw]
    if compound:
        if len(raw) != 1:
            raise validation_error(
                f"body failed validation: {path} should contain only `and` or only `or`, found keys: {', '.join(raw)}."
            )
        return _compile_compound(compound[0], raw[compound[0]], schema, f"{path}.{compound[0]}", depth + 1)
    if "timestamp" in raw:
        return _compile_timestamp(raw, path)
    if "property" in raw:
        return _compile_property(raw, schema, path)
    raise validation_error(
        f'body failed validation: {path} should be a property filter ({{"property": ..., "<type>": {{...}}}}), '
        f'a timestamp filter ({{"timestamp": "last_edited_time", ...}}) or a compound filter (`and`/`or`); '
        f"instead had keys: {', '.join(raw) or 'none'}."
    )


def _compile_compound(kind: str, items: Any, schema: Schema, path: str, depth: int) -> Predicate:
    if depth > MAX_COMPOUND_DEPTH:
        raise validation_error(
            f"body failed validation: {path}: compound filters may nest at most {MAX_COMPOUND_DEPTH} levels deep."
        )
    if not isinstance(items, list):
        raise body_validation_error(path, "should be an array", items)
    if len(items) > MAX_PAGE_SIZE:
        raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_PAGE_SIZE}`", len(items))
    parts = [compile_filter(item, schema, f"{path}[{i}]", depth) for i, item in enumerate(items)]
    if kind == "and":
        return lambda page: all(part(page) for part in parts)
    return lambda page: any(part(page) for part in parts)


def _single_condition(raw: dict[str, Any], type_key: str, path: str, allowed: tuple[str, ...]) -> tuple[str, Any]:
    condition = raw[type_key]
    cond_path = f"{path}.{type_key}"
    if not isinstance(condition, dict) or len(condition) != 1:
        raise validation_error(
            f"body failed validation: {cond_path} should be an object with exactly one condition "
            f"(one of: {', '.join(allowed)}), instead was `{json.dumps(condition)}`."
        )
    op, operand = next(iter(condition.items()))
    if op not in allowed:
        raise validation_error(
            f"body failed validation: {cond_path}.{op} is not a `{type_key}` filter condition; "
            f"use one of: {', '.join(allowed)}."
        )
    if op in ("is_empty", "is_not_empty") and operand is not True:
        raise body_validation_error(f"{cond_path}.{op}", "should be `true`", operand)
    return op, operand


def _compile_timestamp(raw: dict[str, Any], path: str) -> Predicate:
    kind = raw["timestamp"]
    if kind not in TIMESTAMPS:
        raise body_validation_error(f"{path}.timestamp", "should be `created_time` or `last_edited_time`", kind)
    if kind not in raw:
        raise validation_error(
            f"body failed validation: {path}.{kind} should be defined for a `{kind}` timestamp filter."
        )
    op, operand = _single_condition(raw, kind, path, DATE_OPS)
    match = _date_matcher(op, operand, f"{path}.{kind}.{op}")
    if kind == "created_time":
        return lambda page: match(Moment(page.created_ms, False))
    return lambda page: match(Moment(page.edited_ms, False))


def _compile_property(raw: dict[str, Any], schema: Schema, path: str) -> Predicate:
    name = raw["property"]
    if not isinstance(name, str):
        raise body_validation_error(f"{path}.property", "should be a string", name)
    prop = schema.find(name)
    if prop is None:
        known = ", ".join(p.name for p in schema.properties)
        raise validation_error(
            f"Could not find property with name or id: {name}. Properties of this data source: {known}."
        )
    type_keys = [k for k in raw if k not in ("property", "type")]
    if len(type_keys) != 1:
        raise validation_error(
            f"body failed validation: {path} should have exactly one filter type key next to `property` "
            f"(for `{prop.name}`, a {prop.type} property: `{_filter_key_for(prop)}`), "
            f"instead had: {', '.join(type_keys) or 'none'}."
        )
    type_key = type_keys[0]
    _check_filter_fits(prop, type_key, path)
    get = _accessor(prop)
    if type_key in TEXT_FILTER_KEYS:
        op, operand = _single_condition(raw, type_key, path, TEXT_OPS)
        text_match = _text_matcher(op, operand, f"{path}.{type_key}.{op}")
        return lambda page: text_match(get(page) or "")
    if type_key in ("select", "status"):
        op, operand = _single_condition(raw, type_key, path, OPTION_OPS)
        option_match = _option_matcher(op, operand, f"{path}.{type_key}.{op}")
        return lambda page: option_match(get(page))
    if type_key == "number":
        op, operand = _single_condition(raw, type_key, path, NUMBER_OPS)
        number_match = _number_matcher(op, operand, f"{path}.number.{op}")
        return lambda page: number_match(get(page))
    if type_key == "checkbox":
        op, operand = _single_condition(raw, type_key, path, CHECKBOX_OPS)
        if not isinstance(operand, bool):
            raise body_validation_error(f"{path}.checkbox.{op}", "should be a boolean", operand)
        if op == "equals":
            return lambda page: get(page) is operand
        return lambda page: get(page) is not operand
    op, operand = _single_condition(raw, type_key, path, DATE_OPS)  # date / created_time / last_edited_time
    date_match = _date_matcher(op, operand, f"{path}.{type_key}.{op}")
    return lambda page: date_match(get(page))


_FILTER_KEYS_BY_TYPE: dict[str, frozenset[str]] = {
    **{t: TEXT_FILTER_KEYS for t in ("title", "rich_text", "url", "email", "phone_number")},
    "select": frozenset({"select"}),
    "status": frozenset({"status"}),
    "number": frozenset({"number"}),
    "checkbox": frozenset({"checkbox"}),
    "date": frozenset({"date"}),
    "created_time": frozenset({"date", "created_time"}),
    "last_edited_time": frozenset({"date", "last_edited_time"}),
}


def _filter_key_for(prop: PropertySchema) -> str:
    return "rich_text" if prop.type in TEXT_FILTER_KEYS else prop.type


def _check_filter_fits(prop: PropertySchema, type_key: str, path: str) -> None:
    if type_key not in _FILTER_KEYS_BY_TYPE.get(prop.type, frozenset()):
        raise validation_error(
            f"body failed validation: {path}: a `{type_key}` filter cannot be used on `{prop.name}`, which is a "
            f"{prop.type} property; use a `{_filter_key_for(prop)}` filter."
        )


def _text_matcher(op: str, operand: Any, path: str) -> Callable[[str], bool]:
    if op == "is_empty":
        return lambda value: value == ""
    if op == "is_not_empty":
        return lambda value: value != ""
    if not isinstance(operand, str):
        raise body_validation_error(path, "should be a string", operand)
    needle = operand.casefold()
    matchers: dict[str, Callable[[str], bool]] = {
        "equals": lambda value: value == operand,
        "does_not_equal": lambda value: value != operand,
        "contains": lambda value: needle in value.casefold(),
        "does_not_contain": lambda value: needle not in value.casefold(),
        "starts_with": lambda value: value.casefold().startswith(needle),
        "ends_with": lambda value: value.casefold().endswith(needle),
    }
    return matchers[op]


def _option_matcher(op: str, operand: Any, path: str) -> Callable[[str | None], bool]:
    if op == "is_empty":
        return lambda value: value is None
    if op == "is_not_empty":
        return lambda value: value is not None
    if not isinstance(operand, str):
        raise body_validation_error(path, "should be a string (the option name)", operand)
    if op == "equals":
        return lambda value: value == operand
    return lambda value: value != operand


def _number_matcher(op: str, operand: Any, path: str) -> Callable[[float | None], bool]:
    if op == "is_empty":
        return lambda value: value is None
    if op == "is_not_empty":
        return lambda value: value is not None
    if isinstance(operand, bool) or not isinstance(operand, (int, float)):
        raise body_validation_error(path, "should be a number", operand)
    comparisons: dict[str, Callable[[float], bool]] = {
        "equals": lambda value: value == operand,
        "greater_than": lambda value: value > operand,
        "less_than": lambda value: value < operand,
        "greater_than_or_equal_to": lambda value: value >= operand,
        "less_than_or_equal_to": lambda value: value <= operand,
    }
    if op == "does_not_equal":
        return lambda value: value != operand
    compare = comparisons[op]
    return lambda value: value is not None and compare(value)


def _date_matcher(op: str, operand: Any, path: str) -> Callable[[Moment | None], bool]:
    if op == "is_empty":
        return lambda value: value is None
    if op == "is_not_empty":
        return lambda value: value is not None
    if op in ("past_week", "past_month", "past_year", "next_week", "next_month", "next_year", "this_week"):
        if operand != {}:
            raise body_validation_error(path, "should be an empty object `{}`", operand)
        low, high = _relative_range(op)
        return lambda value: value is not None and low <= value.ms <= high
    if not isinstance(operand, str):
        raise body_validation_error(path, "should be an ISO 8601 date string", operand)
    try:
        target = parse_moment(operand)
    except ValueError:
        raise body_validation_error(path, "should be a valid ISO 8601 date string", operand) from None
    compare = {
        "equals": lambda a, b: a == b,
        "before": lambda a, b: a < b,
        "after": lambda a, b: a > b,
        "on_or_before": lambda a, b: a <= b,
        "on_or_after": lambda a, b: a >= b,
    }[op]
    if target.date_only:  # a bare date compares calendar days, as in Notion
        return lambda value: value is not None and compare(value.day, target.day)
    return lambda value: value is not None and compare(value.ms, target.ms)


def _relative_range(op: str) -> tuple[int, int]:
    now = datetime.now(UTC)
    spans = {"week": timedelta(days=7), "month": timedelta(days=30), "year": timedelta(days=365)}
    if op == "this_week":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=now.weekday())
        low, high = start, start + timedelta(days=7) - timedelta(milliseconds=1)
    elif op.startswith("past_"):
        low, high = now - spans[op.removeprefix("past_")], now
    else:
        low, high = now, now + spans[op.removeprefix("next_")]
    return int(low.timestamp() * 1000), int(high.timestamp() * 1000)


# -------------------------------------------------------------------------------------------- sorts


@dataclass(frozen=True)
class SortPlan:
    """Sort keys (JSON-able per page) and directions; the creation sequence always breaks ties."""

    keys: list[Callable[[PageRecord], Any]]
    directions: list[int]  # 1 ascending, -1 descending; last entry is for the sequence
    signature: str  # ties a cursor to the sorts it was made under

    def key_of(self, page: PageRecord) -> list[Any]:
        return [key(page) for key in self.keys] + [page.seq]

    def order(self, keyed: list[tuple[list[Any], PageRecord]]) -> list[tuple[list[Any], PageRecord]]:
        """Sort like `compare`, but as one stable sort pass per key (last key first): much faster
        than a comparison function, and still 'empty last' in both directions."""
        ordered = list(keyed)
        for index in range(len(self.directions) - 1, -1, -1):
            if self.directions[index] > 0:
                ordered.sort(key=lambda item: (item[0][index] is None, item[0][index]))
            else:
                ordered.sort(key=lambda item: (item[0][index] is not None, item[0][index]), reverse=True)
        return ordered

    def compare(self, a: list[Any], b: list[Any]) -> int:
        for x, y, direction in zip(a, b, self.directions, strict=True):
            if x == y:
                continue
            if x is None:  # empty values sort last in either direction
                return 1
            if y is None:
                return -1
            return direction if x > y else -direction
        return 0


def plan_sorts(raw: Any, schema: Schema) -> SortPlan:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise body_validation_error("body.sorts", "should be an array", raw)
    if len(raw) > MAX_PAGE_SIZE:
        raise body_validation_error("body.sorts.length", f"should be ≤ `{MAX_PAGE_SIZE}`", len(raw))
    keys: list[Callable[[PageRecord], Any]] = []
    directions: list[int] = []
    signature: list[str] = []
    for index, sort in enumerate(raw):
        path = f"body.sorts[{index}]"
        if not isinstance(sort, dict):
            raise body_validation_error(path, "should be an object", sort)
        direction = sort.get("direction", "ascending")
        if direction not in ("ascending", "descending"):
            raise body_validation_error(f"{path}.direction", "should be `ascending` or `descending`", direction)
        if "timestamp" in sort:
            kind = sort["timestamp"]
            if kind not in TIMESTAMPS:
                raise body_validation_error(f"{path}.timestamp", "should be `created_time` or `last_edited_time`", kind)
            keys.append(_created_key if kind == "created_time" else _edited_key)
            signature.append(f"t:{kind}:{direction}")
        elif "property" in sort:
            prop = schema.find(sort["property"]) if isinstance(sort["property"], str) else None
            if prop is None:
                raise validation_error(f"Could not find sort property with name or id: {sort['property']}")
            keys.append(_sort_key(prop))
            signature.append(f"p:{prop.id}:{direction}")
        else:
            raise validation_error(
                f"body failed validation: {path} should have `property` or `timestamp`, and `direction`."
            )
        directions.append(1 if direction == "ascending" else -1)
    directions.append(-1)  # default and tie-break order: newest first
    digest = hashlib.sha1("|".join(signature).encode()).hexdigest()[:8]
    return SortPlan(keys, directions, digest)


def _created_key(page: PageRecord) -> int:
    return page.created_ms


def _edited_key(page: PageRecord) -> int:
    return page.edited_ms


def _sort_key(prop: PropertySchema) -> Callable[[PageRecord], Any]:
    if prop.type in TEXT_TYPES:
        return lambda page: plain_text(stored_value(page, prop) or []).casefold() or None
    if prop.type in STRING_TYPES:
        return lambda page: (stored_value(page, prop) or "").casefold() or None
    if prop.type in ("select", "status"):  # Notion orders options as the schema lists them
        order = {o.id: i for i, o in enumerate(prop.options)}
        return lambda page: order.get(stored_value(page, prop) or "")
    if prop.type == "checkbox":
        return lambda page: int(bool(stored_value(page, prop)))
    if prop.type == "date":

        def date_key(page: PageRecord) -> int | None:
            value = stored_value(page, prop)
            return parse_moment(value["start"]).ms if value else None

        return date_key
    if prop.type == "created_time":
        return _created_key
    if prop.type == "last_edited_time":
        return _edited_key
    return lambda page: stored_value(page, prop)  # number


# ------------------------------------------------------------------------------------------ cursors


def encode_cursor(plan: SortPlan, key: list[Any]) -> str:
    raw = json.dumps([plan.signature, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(plan: SortPlan, cursor: Any) -> list[Any]:
    if not isinstance(cursor, str):
        raise body_validation_error("body.start_cursor", "should be a string", cursor)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        signature, key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise validation_error(
            "body failed validation: body.start_cursor should be a cursor returned by a previous query, "
            f"instead was `{cursor}`."
        ) from None
    if signature != plan.signature or not isinstance(key, list) or len(key) != len(plan.directions):
        raise validation_error(
            "body failed validation: body.start_cursor was returned by a query with different sorts."
        )
    return key


# ------------------------------------------------------------------------------------------ paging


@dataclass(frozen=True)
class QueryPage:
    results: list[PageRecord]
    next_cursor: str | None


def page_size_of(raw: Any, path: str = "body.page_size") -> int:
    if raw is None:
        return MAX_PAGE_SIZE
    if isinstance(raw, str) and raw.isdigit():  # GET endpoints pass it as a query string
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise body_validation_error(path, "should be an integer", raw)
    if raw > MAX_PAGE_SIZE:
        raise body_validation_error(path, f"should be ≤ `{MAX_PAGE_SIZE}`", raw)
    if raw < 1:
        raise body_validation_error(path, "should be ≥ `1`", raw)
    return raw


def run_query(
    pages: list[PageRecord], predicate: Predicate | None, plan: SortPlan, start_cursor: Any, page_size: int
) -> QueryPage:
    """Filter, order, and cut one page of results starting at the cursor's sort position."""
    matched = [page for page in pages if predicate is None or predicate(page)]
    keyed = plan.order([(plan.key_of(page), page) for page in matched])
    start = 0
    if start_cursor is not None:
        cmp_key = functools.cmp_to_key(plan.compare)
        cursor_key = cmp_key(decode_cursor(plan, start_cursor))
        start = bisect.bisect_left(keyed, cursor_key, key=lambda item: cmp_key(item[0]))
    chosen = keyed[start : start + page_size]
    following = keyed[start + page_size] if start + page_size < len(keyed) else None
    return QueryPage(
        results=[page for _, page in chosen],
        next_cursor=encode_cursor(plan, following[0]) if following else None,
    )
