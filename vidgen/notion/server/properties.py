"""Data source schemas and page property values: parsing Notion's request shapes, rendering its responses.

Values are stored by property *id* (so renaming a property keeps its values) and select/status values
by option id (so renaming an option shows up on every page, as in Notion). A value whose stored type no
longer matches the schema (the property's type was changed) reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from vidgen.notion.server.errors import body_validation_error, validation_error
from vidgen.notion.server.ids import new_id, new_property_id

COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
NUMBER_FORMATS = frozenset(
    "number number_with_commas percent dollar australian_dollar canadian_dollar singapore_dollar euro pound "
    "yen ruble rupee won yuan real lira rupiah franc hong_kong_dollar new_zealand_dollar krona "
    "norwegian_krone mexican_peso rand new_taiwan_dollar danish_krone zloty baht forint koruna shekel "
    "chilean_peso philippine_peso dirham colombian_peso riyal ringgit leu argentine_peso uruguayan_peso "
    "peruvian_sol".split()
)
TEXT_TYPES = frozenset({"title", "rich_text"})
STRING_TYPES = frozenset({"url", "email", "phone_number"})  # a plain string or null
READ_ONLY_TYPES = frozenset({"created_time", "last_edited_time"})
SUPPORTED_TYPES = (
    "title", "rich_text", "number", "select", "status", "date", "checkbox", "url", "email", "phone_number",
    "created_time", "last_edited_time",
)  # fmt: skip
MAX_TEXT_CONTENT = 2000
MAX_ARRAY_ITEMS = 100
MAX_URL_LENGTH = 2000
MAX_OPTION_NAME = 100
DEFAULT_ANNOTATIONS = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}


@dataclass
class SelectOption:
    id: str
    name: str
    color: str = "default"
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "description": self.description}


@dataclass
class StatusGroup:
    id: str
    name: str
    color: str
    option_ids: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "option_ids": list(self.option_ids)}


@dataclass
class PropertySchema:
    id: str
    name: str
    type: str
    description: str | None = None
    number_format: str = "number"
    options: list[SelectOption] = field(default_factory=list)
    groups: list[StatusGroup] = field(default_factory=list)

    def option_by_id(self, option_id: str) -> SelectOption | None:
        return next((o for o in self.options if o.id == option_id), None)

    def option_by_name(self, name: str) -> SelectOption | None:
        return next((o for o in self.options if o.name == name), None)

    def config_json(self) -> dict[str, Any]:
        if self.type == "number":
            return {"format": self.number_format}
        if self.type == "select":
            return {"options": [o.to_json() for o in self.options]}
        if self.type == "status":
            return {"options": [o.to_json() for o in self.options], "groups": [g.to_json() for g in self.groups]}
        return {}

    def to_response(self) -> dict[str, Any]:
        """The property object inside a data source's `properties`."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            self.type: self.config_json(),
        }

    def to_store(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "number_format": self.number_format,
            "options": [o.to_json() for o in self.options],
            "groups": [g.to_json() for g in self.groups],
        }

    @classmethod
    def from_store(cls, raw: dict[str, Any]) -> PropertySchema:
        return cls(
            id=raw["id"],
            name=raw["name"],
            type=raw["type"],
            description=raw.get("description"),
            number_format=raw.get("number_format", "number"),
            options=[SelectOption(**o) for o in raw.get("options", [])],
            groups=[StatusGroup(**g) for g in raw.get("groups", [])],
        )


class Schema:
    """An ordered set of properties, addressable by name or id (Notion accepts either everywhere)."""

    def __init__(self, properties: list[PropertySchema]) -> None:
        self.properties = properties

    def find(self, key: str) -> PropertySchema | None:
        for prop in self.properties:
            if prop.name == key:
                return prop
        for prop in self.properties:
            if prop.id == key:
                return prop
        return None

    @property
    def title_property(self) -> PropertySchema:
        return next(p for p in self.properties if p.type == "title")

    def ids(self) -> set[str]:
        return {p.id for p in self.properties}

    def to_response(self) -> dict[str, Any]:
        return {p.name: p.to_response() for p in self.properties}

    def to_store(self) -> list[dict[str, Any]]:
        return [p.to_store() for p in self.properties]

    @classmethod
    def from_store(cls, raw: list[dict[str, Any]]) -> Schema:
        return cls([PropertySchema.from_store(p) for p in raw])

    def copy(self) -> Schema:
        return Schema.from_store(self.to_store())


# ---------------------------------------------------------------------------------------------- schema


def _config_type(raw: dict[str, Any], path: str) -> str:
    declared = raw.get("type")
    present = [key for key in raw if key in SUPPORTED_TYPES]
    if declared is not None:
        if declared not in SUPPORTED_TYPES:
            raise _unsupported_type(declared, path)
        return declared
    if len(present) == 1:
        return present[0]
    if not present:
        unknown = [k for k in raw if k not in {"name", "description", "id", "type"}]
        if unknown:
            raise _unsupported_type(unknown[0], path)
        raise validation_error(
            f'body failed validation: {path} should declare a property type, e.g. {{"rich_text": {{}}}}.'
        )
    raise validation_error(f"body failed validation: {path} declares several property types: {', '.join(present)}.")


def _unsupported_type(type_name: str, path: str) -> Exception:
    return validation_error(
        f"body failed validation: {path} has property type `{type_name}`, which the local Notion server does "
        f"not support. Supported: {', '.join(SUPPORTED_TYPES)}."
    )


def _parse_options(raw: Any, path: str, existing: list[SelectOption]) -> list[SelectOption]:
    """The given list *replaces* the options (as in Notion); known names/ids keep their id and color."""
    if not isinstance(raw, list):
        raise body_validation_error(path, "should be an array", raw)
    if len(raw) > MAX_ARRAY_ITEMS:
        raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_ARRAY_ITEMS}`", len(raw))
    parsed: list[SelectOption] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise body_validation_error(item_path, "should be an object", item)
        known = None
        if isinstance(item.get("id"), str):
            known = next((o for o in existing if o.id == item["id"]), None)
            if known is None:
                raise validation_error(
                    f"body failed validation: {item_path}.id `{item['id']}` is not an existing option."
                )
        name = item.get("name", known.name if known else None)
        name = _option_name(name, f"{item_path}.name")
        if known is None:
            known = next((o for o in existing if o.name == name), None)
        if name in seen:
            raise validation_error(f"body failed validation: {path} contains the option `{name}` twice.")
        seen.add(name)
        color = item.get("color", known.color if known else _next_color(len(existing) + index))
        if color not in COLORS:
            raise body_validation_error(f"{item_path}.color", f"should be one of {', '.join(COLORS)}", color)
        description = item.get("description", known.description if known else None)
        parsed.append(SelectOption(id=known.id if known else new_id(), name=name, color=color, description=description))
    return parsed


def _option_name(name: Any, path: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise body_validation_error(path, "should be a non-empty string", name)
    if len(name) > MAX_OPTION_NAME:
        raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_OPTION_NAME}`", len(name))
    if "," in name:
        raise validation_error(f"body failed validation: {path} cannot contain commas, instead was `{name}`.")
    return name


def _next_color(index: int) -> str:
    palette = COLORS[1:]
    return palette[index % len(palette)]


def _default_status() -> tuple[list[SelectOption], list[StatusGroup]]:
    not_started = SelectOption(new_id(), "Not started", "default")
    in_progress = SelectOption(new_id(), "In progress", "blue")
    done = SelectOption(new_id(), "Done", "green")
    groups = [
        StatusGroup(new_id(), "To-do", "gray", [not_started.id]),
        StatusGroup(new_id(), "In progress", "blue", [in_progress.id]),
        StatusGroup(new_id(), "Complete", "green", [done.id]),
    ]
    return [not_started, in_progress, done], groups


def _status_groups(options: list[SelectOption], previous: list[StatusGroup]) -> list[StatusGroup]:
    """Options keep the group they were in; new ones join the first group ('To-do')."""
    groups = [StatusGroup(g.id, g.name, g.color, []) for g in previous] or [
        StatusGroup(new_id(), "To-do", "gray", []),
        StatusGroup(new_id(), "In progress", "blue", []),
        StatusGroup(new_id(), "Complete", "green", []),
    ]
    for option in options:
        home = next((g for g, old in zip(groups, previous, strict=False) if option.id in old.option_ids), groups[0])
        home.option_ids.append(option.id)
    return groups


def build_property(name: str, raw: Any, path: str, taken_ids: set[str]) -> PropertySchema:
    """A new property from a create/add request such as {"select": {"options": [...]}}."""
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    type_name = _config_type(raw, path)
    prop = PropertySchema(
        id="title" if type_name == "title" else new_property_id(taken_ids),
        name=_property_name(raw.get("name", name), f"{path}.name"),
        type=type_name,
        description=raw.get("description") if isinstance(raw.get("description"), str) else None,
    )
    _apply_config(prop, raw.get(type_name) or {}, f"{path}.{type_name}", fresh=True)
    return prop


def _property_name(name: Any, path: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise body_validation_error(path, "should be a non-empty string", name)
    return name


def _apply_config(prop: PropertySchema, config: Any, path: str, *, fresh: bool) -> None:
    if not isinstance(config, dict):
        raise body_validation_error(path, "should be an object", config)
    if prop.type == "number":
        number_format = config.get("format", "number" if fresh else prop.number_format)
        if number_format not in NUMBER_FORMATS:
            raise body_validation_error(
                f"{path}.format", "should be a Notion number format such as `number` or `dollar`", number_format
            )
        prop.number_format = number_format
    elif prop.type == "select":
        if "options" in config or fresh:
            prop.options = _parse_options(config.get("options", []), f"{path}.options", prop.options)
    elif prop.type == "status":
        if "options" in config:
            prop.options = _parse_options(config["options"], f"{path}.options", prop.options)
            prop.groups = _status_groups(prop.options, prop.groups)
        elif fresh:
            prop.options, prop.groups = _default_status()


def build_schema(raw: Any, path: str) -> Schema:
    """The schema of a new data source; a missing title property becomes 'Name', like Notion's default."""
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    properties: list[PropertySchema] = []
    for name, config in raw.items():
        prop = build_property(name, config, f"{path}.{name}", {p.id for p in properties})
        if any(p.name == prop.name for p in properties):
            raise validation_error(f"body failed validation: {path} has two properties named `{prop.name}`.")
        properties.append(prop)
    titles = [p for p in properties if p.type == "title"]
    if len(titles) > 1:
        raise validation_error(
            f"body failed validation: {path} may contain only one title property, found {len(titles)}."
        )
    if not titles:
        properties.insert(0, PropertySchema(id="title", name="Name", type="title"))
    return Schema(properties)


def update_schema(schema: Schema, raw: Any, path: str) -> Schema:
    """Notion's 'update data source' semantics: null removes, {"name"} renames, a type config adds/changes."""
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    updated = schema.copy()
    for key, change in raw.items():
        item_path = f"{path}.{key}"
        prop = updated.find(key)
        if change is None:
            if prop is None:
                raise validation_error(f"Could not find property with name or id: {key}")
            if prop.type == "title":
                raise validation_error(
                    f"body failed validation: {item_path} is the title property and cannot be removed."
                )
            updated.properties.remove(prop)
            continue
        if not isinstance(change, dict):
            raise body_validation_error(item_path, "should be an object or `null`", change)
        if prop is None:
            new_prop = build_property(key, change, item_path, updated.ids())
            if new_prop.type == "title":
                raise validation_error(
                    f"body failed validation: {item_path}: a data source has exactly one title property."
                )
            if updated.find(new_prop.name) is not None:
                raise validation_error(f"body failed validation: {item_path}.name `{new_prop.name}` is already used.")
            updated.properties.append(new_prop)
            continue
        _modify_property(updated, prop, change, item_path)
    return updated


def _modify_property(schema: Schema, prop: PropertySchema, change: dict[str, Any], path: str) -> None:
    if "name" in change:
        new_name = _property_name(change["name"], f"{path}.name")
        clash = schema.find(new_name)
        if clash is not None and clash is not prop and clash.name == new_name:
            raise validation_error(f"body failed validation: {path}.name `{new_name}` is already used.")
        prop.name = new_name
    if isinstance(change.get("description"), str):
        prop.description = change["description"]
    type_keys = [k for k in change if k in SUPPORTED_TYPES] or ([change["type"]] if "type" in change else [])
    if not type_keys:
        unknown = [k for k in change if k not in {"name", "description", "id", "type"}]
        if unknown:
            raise _unsupported_type(unknown[0], path)
        return
    new_type = _config_type(change, path)
    if new_type != prop.type:
        if prop.type == "title" or new_type == "title":
            raise validation_error(f"body failed validation: {path}: the title property's type cannot be changed.")
        prop.type = new_type
        prop.options, prop.groups, prop.number_format = [], [], "number"
        _apply_config(prop, change.get(new_type) or {}, f"{path}.{new_type}", fresh=True)
    else:
        _apply_config(prop, change.get(new_type) or {}, f"{path}.{new_type}", fresh=False)


# ------------------------------------------------------------------------------------------- rich text


def parse_rich_text(raw: Any, path: str) -> list[dict[str, Any]]:
    """Request rich text -> the full response form (annotations, plain_text, href filled in)."""
    if not isinstance(raw, list):
        raise body_validation_error(path, "should be an array", raw)
    if len(raw) > MAX_ARRAY_ITEMS:
        raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_ARRAY_ITEMS}`", len(raw))
    return [_parse_rich_text_item(item, f"{path}[{i}]") for i, item in enumerate(raw)]


def _parse_rich_text_item(item: Any, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise body_validation_error(path, "should be an object", item)
    annotations = dict(DEFAULT_ANNOTATIONS)
    given = item.get("annotations")
    if isinstance(given, dict):
        for key, value in given.items():
            if key not in DEFAULT_ANNOTATIONS:
                raise validation_error(f"body failed validation: {path}.annotations.{key} is not an annotation.")
            annotations[key] = value
    kind = item.get("type") or ("equation" if "equation" in item else "text")
    if kind == "equation":
        expression = (item.get("equation") or {}).get("expression")
        if not isinstance(expression, str):
            raise body_validation_error(f"{path}.equation.expression", "should be a string", expression)
        return {"type": "equation", "equation": {"expression": expression}, "annotations": annotations,
                "plain_text": expression, "href": None}  # fmt: skip
    if kind != "text":
        raise validation_error(
            f"body failed validation: {path}.type `{kind}` is not supported by the local Notion server (use `text`)."
        )
    text = item.get("text")
    if not isinstance(text, dict):
        raise body_validation_error(f"{path}.text", "should be an object", text)
    content = text.get("content")
    if not isinstance(content, str):
        raise body_validation_error(f"{path}.text.content", "should be a string", content)
    if len(content) > MAX_TEXT_CONTENT:
        raise body_validation_error(f"{path}.text.content.length", f"should be ≤ `{MAX_TEXT_CONTENT}`", len(content))
    link = text.get("link")
    if link is not None:
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            raise body_validation_error(f"{path}.text.link", "should be an object with a `url` string or `null`", link)
        link = {"url": _checked_url(link["url"], f"{path}.text.link.url")}
    return {
        "type": "text",
        "text": {"content": content, "link": link},
        "annotations": annotations,
        "plain_text": content,
        "href": link["url"] if link else None,
    }


def plain_text(rich_text: list[dict[str, Any]]) -> str:
    return "".join(item.get("plain_text", "") for item in rich_text)


def _checked_url(url: str, path: str) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_URL_LENGTH}`", len(url))
    return url


# --------------------------------------------------------------------------------------- page values


def parse_iso(value: Any, path: str) -> str:
    """Notion dates are ISO 8601 date or date-time strings; the string is stored as given."""
    if not isinstance(value, str):
        raise body_validation_error(path, "should be an ISO 8601 date string", value)
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError:
        raise body_validation_error(path, "should be a valid ISO 8601 date string", value) from None
    return value


def parse_value(prop: PropertySchema, raw: Any, path: str) -> Any:
    """One property of a create/update page request -> the stored value.

    May add an option to `prop` (a select value naming an unknown option creates it, as Notion does);
    the caller saves the schema with the page in one transaction.
    """
    if prop.type in READ_ONLY_TYPES:
        raise validation_error(
            f"body failed validation: {path}: `{prop.name}` is a {prop.type} property and cannot be written."
        )
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    if prop.type not in raw:
        raise validation_error(f"{prop.name} is expected to be {prop.type}.")
    payload = raw[prop.type]
    value_path = f"{path}.{prop.type}"
    if prop.type in TEXT_TYPES:
        return parse_rich_text(payload, value_path)
    if prop.type in ("select", "status"):
        return _parse_option_value(prop, payload, value_path)
    if prop.type == "number":
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))):
            raise body_validation_error(value_path, "should be a number or `null`", payload)
        return payload
    if prop.type == "checkbox":
        if not isinstance(payload, bool):
            raise body_validation_error(value_path, "should be a boolean", payload)
        return payload
    if prop.type == "date":
        return _parse_date_value(payload, value_path)
    if payload is None:
        return None
    if not isinstance(payload, str):
        raise body_validation_error(value_path, "should be a string or `null`", payload)
    return _checked_url(payload, value_path) if payload else None


def _parse_option_value(prop: PropertySchema, payload: Any, path: str) -> str | None:
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise body_validation_error(path, "should be an object or `null`", payload)
    if isinstance(payload.get("id"), str):
        option = prop.option_by_id(payload["id"])
        if option is None:
            raise validation_error(
                f"body failed validation: {path}.id `{payload['id']}` is not an option of `{prop.name}`."
            )
        return option.id
    name = _option_name(payload.get("name"), f"{path}.name")
    option = prop.option_by_name(name)
    if option is not None:
        return option.id
    if prop.type == "status":
        known = ", ".join(o.name for o in prop.options)
        raise validation_error(
            f'Invalid status option. Status option "{name}" does not exist for `{prop.name}` (options: {known}).'
        )
    color = payload.get("color", _next_color(len(prop.options)))
    if color not in COLORS:
        raise body_validation_error(f"{path}.color", f"should be one of {', '.join(COLORS)}", color)
    option = SelectOption(id=new_id(), name=name, color=color)
    prop.options.append(option)
    return option.id


def _parse_date_value(payload: Any, path: str) -> dict[str, Any] | None:
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise body_validation_error(path, "should be an object or `null`", payload)
    start = parse_iso(payload.get("start"), f"{path}.start")
    end = payload.get("end")
    if end is not None:
        end = parse_iso(end, f"{path}.end")
    time_zone = payload.get("time_zone")
    if time_zone is not None and not isinstance(time_zone, str):
        raise body_validation_error(f"{path}.time_zone", "should be a string or `null`", time_zone)
    return {"start": start, "end": end, "time_zone": time_zone}


def empty_value(prop: PropertySchema) -> Any:
    if prop.type in TEXT_TYPES:
        return []
    if prop.type == "checkbox":
        return False
    return None


def render_value(prop: PropertySchema, stored: Any, created_time: str, last_edited_time: str) -> dict[str, Any]:
    """A page's property value object: {"id", "type", <type>: payload}."""
    if prop.type == "created_time":
        payload: Any = created_time
    elif prop.type == "last_edited_time":
        payload = last_edited_time
    elif prop.type in ("select", "status"):
        option = prop.option_by_id(stored) if stored else None
        payload = {"id": option.id, "name": option.name, "color": option.color} if option else None
    elif prop.type in TEXT_TYPES:
        payload = stored or []
    elif prop.type == "date":
        payload = stored or None
    else:
        payload = stored if stored is not None else empty_value(prop)
    return {"id": prop.id, "type": prop.type, prop.type: payload}
