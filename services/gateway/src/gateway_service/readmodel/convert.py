"""Protobuf messages as the JSON the REST reads and the live stream return, and the pydantic model of that JSON.

One rule for every message, so a REST item and the stream's `data:` of the same record are the same JSON, and the
OpenAPI description is generated from the same descriptors the JSON is (`model_of`):
- `trading.common.v1.Decimal` is a plain decimal string (`"101.25"`), `null` when unset: money is never a float;
- an enum is its value's name without the enum's prefix (`ORDER_STATUS_FILLED` -> `"FILLED"`);
- a time field (UNIX ns, `TIME_FIELDS`) is an RFC 3339 string (UTC, `null` when 0) plus `<name>_ns`, the integer;
- a double that is NaN or infinite is `null`; int64 stays an integer (not the proto3 JSON mapping's string);
  bytes are base64, maps are objects.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, create_model

DECIMAL = "trading.common.v1.Decimal"
# UNIX-ns fields rendered as RFC 3339 plus `<name>_ns`.
TIME_FIELDS = frozenset(
    {
        "ts_event",
        "ts_init",
        "created_at",
        "updated_at",
        "bar_ts",
        "broker_ts",
        "window_start",
        "window_end",
        "starts_at",
        "ends_at",
        "changed_at",
        "requested_at",
        "expires_at",
        "recorded_at",
        "loaded_at",
    }
)
_F = FieldDescriptor


def rfc3339(ns: int) -> str | None:
    """UNIX ns as RFC 3339 (UTC, microseconds); None for 0 (unset)."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> int:
    """RFC 3339 (`2026-12-01T10:00:00Z`, an offset, or a date) as UNIX ns; ValueError when it is not one."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        if "T" in text or " " in text.strip():
            raise ValueError("a time needs its offset (Z or +hh:mm)")
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


@cache
def _enum_prefix(enum: Any) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_name(enum: Any, number: int) -> str:
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(_enum_prefix(enum))


def _is_map(field: Any) -> bool:
    return bool(field.message_type is not None and field.message_type.GetOptions().map_entry)


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _scalar(field: Any, value: Any) -> Any:
    if field.type == _F.TYPE_ENUM:
        return enum_name(field.enum_type, value)
    if field.type == _F.TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.type == _F.TYPE_MESSAGE:
        return to_json(value)
    if field.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def to_json(message: Message) -> Any:
    """The message as JSON-able data (a Decimal message is its string)."""
    descriptor: Any = message.DESCRIPTOR
    if descriptor.full_name == DECIMAL:
        return message.value or None  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for field in descriptor.fields:
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {str(k): _scalar(value_field, v) for k, v in value.items()}
        elif _is_repeated(field):
            out[field.name] = [_scalar(field, v) for v in value]
        elif field.type == _F.TYPE_MESSAGE:
            out[field.name] = to_json(value)
        elif field.name in TIME_FIELDS:
            out[field.name] = rfc3339(value)
            out[f"{field.name}_ns"] = value
        else:
            out[field.name] = _scalar(field, value)
    return out


# -- the pydantic models of that JSON (for OpenAPI and response validation) --------------------------------------
def _scalar_type(field: Any) -> Any:
    if field.type == _F.TYPE_MESSAGE:
        return model_of(field.message_type)
    if field.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return float | None  # a NaN or an infinity is null
    if field.type == _F.TYPE_BOOL:
        return bool
    if field.type in (_F.TYPE_STRING, _F.TYPE_ENUM, _F.TYPE_BYTES):
        return str
    return int


@cache
def model_of(descriptor: Any) -> Any:
    """The pydantic model of `to_json(<message of this descriptor>)` (a Decimal is `str | None`)."""
    if descriptor.full_name == DECIMAL:
        return str | None
    fields: dict[str, Any] = {}
    for field in descriptor.fields:
        if _is_map(field):
            value_type = _scalar_type(field.message_type.fields_by_name["value"])
            fields[field.name] = (dict[str, value_type], ...)  # type: ignore[valid-type]
        elif _is_repeated(field):
            item_type = _scalar_type(field)
            fields[field.name] = (list[item_type], ...)  # type: ignore[valid-type]
        elif field.name in TIME_FIELDS:
            fields[field.name] = (str | None, ...)
            fields[f"{field.name}_ns"] = (int, ...)
        else:
            fields[field.name] = (_scalar_type(field), ...)
    name = descriptor.full_name.replace("trading.", "").replace(".v1.", "_").replace(".", "_")
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=_doc(descriptor), **fields)


def _doc(descriptor: Any) -> str:
    return f"`{descriptor.full_name}` as JSON (decimals as strings, times as RFC 3339 plus `_ns`)."


def model_for(message_type: type[Message]) -> type[BaseModel]:
    return model_of(message_type.DESCRIPTOR)  # type: ignore[no-any-return]
