"""Exact decimals on the wire: conversion between Python Decimal and trading.common.v1.Decimal (a string).

Money, prices and quantities in orders, fills and positions are never floats (docs/architecture.md section 3).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from trading.common.v1 import common_pb2

ZERO = Decimal(0)


class DecimalFormatError(ValueError):
    """A wire decimal that is not a finite decimal number."""


def to_proto(value: Decimal | int | str | None) -> common_pb2.Decimal:
    """Encode an exact value; None encodes as the empty decimal (field not set). Floats are refused."""
    if value is None:
        return common_pb2.Decimal()
    if isinstance(value, float):
        raise TypeError("floats are not exact: pass a Decimal, an int or a decimal string")
    number = value if isinstance(value, Decimal) else parse(str(value))
    if not number.is_finite():
        raise DecimalFormatError(f"not a finite decimal: {value!r}")
    return common_pb2.Decimal(value=format(number.normalize() if number != 0 else ZERO, "f"))


def parse(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise DecimalFormatError(f"not a decimal number: {text!r}") from exc
    if not number.is_finite():
        raise DecimalFormatError(f"not a finite decimal: {text!r}")
    return number


def from_proto(message: common_pb2.Decimal, default: Decimal | None = ZERO) -> Decimal | None:
    """Decode a wire decimal; the empty decimal decodes to default."""
    if not message.value:
        return default
    return parse(message.value)
