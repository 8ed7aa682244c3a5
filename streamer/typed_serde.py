"""Typed value serdes: JSON in Kafka, your class in the topology.

``typed(cls)`` picks the serde for a dataclass (stdlib only), a pydantic v2 model (extra
``pydantic``) or a msgspec Struct (extra ``msgspec``). Values are written as JSON objects.
A message that does not fit the type raises ``DeserializationError`` naming the field
(``Order: field 'amount': expected int, got str``), so the source hands it to the
deserialization handler (fail, log_and_continue or dead_letter) like any unreadable message.
Writing something that is not an instance of the class is a bug in the topology, not bad
data: it raises ``SerializationError`` and fails the task under every policy.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from streamer.errors import DeserializationError, SerializationError
from streamer.serde import Serde

#: Turns one decoded JSON value into the field's Python value, or raises ``_Mismatch``.
Convert = Callable[[Any], Any]


def typed(cls: type) -> Serde:
    """The serde for ``cls``: a dataclass, a pydantic ``BaseModel`` or a ``msgspec.Struct``."""
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        return DataclassSerde(cls)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        return PydanticSerde(cls)
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        return MsgspecSerde(cls)
    raise SerializationError(
        f"typed() takes a dataclass, a pydantic BaseModel or a msgspec Struct class, not {cls!r}; "
        "for other values pass a serde object (see docs/serdes.md)"
    )


def _field_error(cls: type, path: str, problem: str) -> DeserializationError:
    where = f"field '{path}'" if path else "value"
    return DeserializationError(f"{cls.__name__}: {where}: {problem}")


def _json_object(cls: type, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise DeserializationError(f"{cls.__name__}: not valid JSON ({error}): {bytes(data[:60])!r}") from None


class _TypedSerde:
    """What the three typed serdes share: None passes, only instances of ``cls`` are written."""

    name = "typed"
    cls: type

    def _encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes) -> Any:
        """The value of ``data``, or ``DeserializationError`` naming the field that does not fit."""
        raise NotImplementedError

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        if not isinstance(obj, self.cls):
            raise SerializationError(
                f"{type(self).__name__}({self.cls.__name__}) writes {self.cls.__name__} values, not "
                f"{type(obj).__name__} {obj!r:.60}; build a {self.cls.__name__} before the sink (e.g. in "
                "map_values) or give this sink another value_serde"
            )
        return self._encode(obj)

    def serialize_many(self, objs: list[Any]) -> list[bytes | None]:
        dump = self.serialize
        return [dump(obj) for obj in objs]

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else self._decode(data)

    def deserialize_many(self, datas: list[bytes | None]) -> list[Any]:
        load = self._decode
        return [None if data is None else load(data) for data in datas]


# --- dataclasses ---------------------------------------------------------------------------------


class _Mismatch(Exception):
    """A value that does not fit its annotation; the path is filled in on the way out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        self.path.append(segment)
        return self

    def dotted(self) -> str:
        return "".join(reversed(self.path)).lstrip(".")


def _got(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _expect(expected: str, value: Any) -> _Mismatch:
    return _Mismatch(f"expected {expected}, got {_got(value)}")


class DataclassSerde(_TypedSerde):
    """JSON objects <-> instances of a dataclass, checked against its type hints.

    Writing is orjson's native dataclass encoding. Reading checks each field against
    its annotation as the value is built (no extra pass): str, int, float (an int is
    accepted), bool, None, Optional/unions, Literal, Enum, list, tuple, set, dict with
    str keys, datetime/date/time (ISO 8601 text), UUID, Any and nested dataclasses.
    Keys the class does not know are ignored, so producers may add fields first.
    """

    name = "dataclass"

    def __init__(self, cls: type) -> None:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise SerializationError(f"DataclassSerde takes a dataclass class, not {cls!r}")
        self.cls = cls
        self._convert = _Compiler().dataclass(cls)

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=_json_default)
        except TypeError as error:
            raise SerializationError(f"DataclassSerde({self.cls.__name__}) cannot write {obj!r:.80}: {error}") from None

    def _decode(self, data: bytes) -> Any:
        value = _json_object(self.cls, data)
        try:
            return self._convert(value)
        except _Mismatch as error:
            raise _field_error(self.cls, error.dotted(), error.problem) from None


def _json_default(obj: Any) -> Any:
    """What orjson does not write itself: sets, as arrays."""
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _exact(kind: type, expected: str) -> Convert:
    def convert(value: Any) -> Any:
        if value.__class__ is kind:
            return value
        raise _expect(expected, value)
    return convert


def _float(value: Any) -> Any:
    cls = value.__class__
    if cls is float:
        return value
    if cls is int:
        return float(value)
    raise _expect("float", value)


def _none(value: Any) -> Any:
    if value is None:
        return None
    raise _expect("null", value)


def _any(value: Any) -> Any:
    return value


def _from_text(kind: Callable[[str], Any], expected: str) -> Convert:
    def convert(value: Any) -> Any:
        if value.__class__ is str:
            try:
                return kind(value)
            except ValueError:
                pass
        raise _Mismatch(f"expected {expected}, got {_got(value)} {value!r:.40}")
    return convert


_SIMPLE: dict[Any, Convert] = {
    str: _exact(str, "str"),
    int: _exact(int, "int"),
    bool: _exact(bool, "bool"),
    float: _float,
    type(None): _none,
    None: _none,
    Any: _any,
    object: _any,
    datetime.datetime: _from_text(datetime.datetime.fromisoformat, "an ISO 8601 datetime"),
    datetime.date: _from_text(datetime.date.fromisoformat, "an ISO 8601 date"),
    datetime.time: _from_text(datetime.time.fromisoformat, "an ISO 8601 time"),
    uuid.UUID: _from_text(uuid.UUID, "a UUID"),
}


class _Compiler:
    """Builds one converter per annotation; dataclasses are compiled once (recursion allowed)."""

    def __init__(self) -> None:
        self._classes: dict[type, Convert] = {}

    def dataclass(self, cls: type) -> Convert:
        known = self._classes.get(cls)
        if known is not None:
            return known
        plan: list[tuple[str, Convert, bool]] = []

        def convert(value: Any) -> Any:
            if value.__class__ is not dict:
                raise _expect(f"an object ({cls.__name__})", value)
            kwargs = {}
            for name, check, required in plan:
                if name in value:
                    try:
                        kwargs[name] = check(value[name])
                    except _Mismatch as error:
                        raise error.at("." + name) from None
                elif required:
                    raise _Mismatch("missing").at("." + name)
            return cls(**kwargs)

        self._classes[cls] = convert  # before the fields: a recursive class finds itself
        try:
            hints = typing.get_type_hints(cls)
        except NameError as error:
            raise SerializationError(f"cannot resolve the type hints of {cls.__name__}: {error}") from None
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            plan.append((field.name, self.annotation(hints[field.name], f"{cls.__name__}.{field.name}"), required))
        return convert

    def annotation(self, hint: Any, where: str) -> Convert:
        simple = _SIMPLE.get(hint)
        if simple is not None:
            return simple
        if isinstance(hint, type):
            if dataclasses.is_dataclass(hint):
                return self.dataclass(hint)
            if issubclass(hint, enum.Enum):
                return _enum(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            return self.annotation(args[0], where)
        if origin is typing.Union or origin is types.UnionType:
            return _union([self.annotation(arg, where) for arg in args], args)
        if origin is typing.Literal:
            return _literal(args)
        if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            return _sequence(self.annotation(args[0] if args else Any, where), origin)
        if origin is tuple:
            return _tuple([self.annotation(arg, where) for arg in args])
        if origin is dict:
            if args and args[0] is not str:
                raise SerializationError(f"{where}: JSON object keys are text; annotate dict[str, ...], not {hint}")
            return _mapping(self.annotation(args[1] if args else Any, where))
        if hint is dict:
            return _mapping(_any)
        if hint in (list, tuple, set, frozenset):
            return _sequence(_any, hint)
        raise SerializationError(
            f"{where}: DataclassSerde cannot check values of type {hint!r}; use str, int, float, bool, None, "
            "unions, Literal, Enum, list/tuple/set/dict, datetime, date, time, UUID, Any or a nested dataclass "
            "(or typed() with a pydantic model or msgspec Struct)"
        )


def _type_name(hint: Any) -> str:
    return "null" if hint is type(None) else getattr(hint, "__name__", repr(hint))


def _union(options: list[Convert], hints: tuple[Any, ...]) -> Convert:
    expected = " | ".join(_type_name(hint) for hint in hints)
    if len(options) == 2 and type(None) in hints:  # Optional[X]: the common case, no loop
        inner = options[0] if hints[1] is type(None) else options[1]

        def optional(value: Any) -> Any:
            if value is None:
                return None
            try:
                return inner(value)
            except _Mismatch as error:
                if error.path:
                    raise
                raise _expect(expected, value) from None
        return optional

    def union(value: Any) -> Any:
        deepest: _Mismatch | None = None
        for option in options:
            try:
                return option(value)
            except _Mismatch as error:
                if error.path and deepest is None:
                    deepest = error  # a nested value matched the shape but not a field: say which
        if deepest is not None:
            raise deepest
        raise _expect(expected, value)
    return union


def _literal(values: tuple[Any, ...]) -> Convert:
    allowed = set(values)

    def literal(value: Any) -> Any:
        if value.__class__ in (str, int, bool) and value in allowed:
            return value
        raise _Mismatch(f"expected one of {list(values)}, got {value!r:.40}")
    return literal


def _enum(cls: type[enum.Enum]) -> Convert:
    def convert(value: Any) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise _Mismatch(f"expected a {cls.__name__} value {[m.value for m in cls]}, got {value!r:.40}") from None
    return convert


def _sequence(item: Convert, kind: Any) -> Convert:
    build = list if kind is list else kind

    def sequence(value: Any) -> Any:
        if value.__class__ is not list:
            raise _expect("an array", value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except _Mismatch as error:
                raise error.at(f"[{index}]") from None
        return out if build is list else build(out)
    return sequence


def _tuple(items: list[Convert]) -> Convert:
    def convert(value: Any) -> Any:
        if value.__class__ is not list or len(value) != len(items):
            raise _expect(f"an array of {len(items)}", value)
        out = []
        for index, (check, element) in enumerate(zip(items, value)):
            try:
                out.append(check(element))
            except _Mismatch as error:
                raise error.at(f"[{index}]") from None
        return tuple(out)
    return convert


def _mapping(item: Convert) -> Convert:
    def mapping(value: Any) -> Any:
        if value.__class__ is not dict:
            raise _expect("an object", value)
        out = {}
        for key, element in value.items():
            try:
                out[key] = item(element)
            except _Mismatch as error:
                raise error.at(f"[{key!r}]") from None
        return out
    return mapping


# --- pydantic ------------------------------------------------------------------------------------


def _located(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


class PydanticSerde(_TypedSerde):
    """JSON <-> a pydantic v2 model, validated by pydantic-core's JSON parser in one step.

    Pydantic's rules apply as the model sets them (lax by default: ``"3"`` becomes 3 for an
    int field; set ``model_config = ConfigDict(strict=True)`` to refuse that).
    """

    name = "pydantic"

    def __init__(self, model: type) -> None:
        pydantic = _optional("pydantic", "pydantic")
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise SerializationError(f"PydanticSerde takes a pydantic BaseModel class, not {model!r}")
        self.cls = model
        checked: Any = model
        self._validate = checked.model_validate_json
        self._dump = checked.__pydantic_serializer__.to_json
        self._invalid = pydantic.ValidationError

    def _encode(self, obj: Any) -> bytes:
        return self._dump(obj)

    def _decode(self, data: bytes) -> Any:
        try:
            return self._validate(data)
        except self._invalid as error:
            raise self._error(error) from None

    def _error(self, error: Any) -> DeserializationError:
        problems = error.errors(include_url=False)
        first = problems[0]
        if first["type"] == "json_invalid":
            return DeserializationError(f"{self.cls.__name__}: not valid JSON ({first['msg']})")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        got = "" if first["type"] == "missing" else f", got {_got(first.get('input'))}"
        return _field_error(self.cls, _located(first["loc"]), f"{first['msg']}{got}{more}")


# --- msgspec -------------------------------------------------------------------------------------

#: msgspec's validation messages end with the JSON path: "Expected `int`, got `str` - at `$.amount`".
_MSGSPEC_PATH = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MSGSPEC_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


class MsgspecSerde(_TypedSerde):
    """JSON <-> a msgspec Struct (or any type msgspec decodes), with msgspec's compiled codec.

    The fastest typed serde here (see docs/serdes.md for figures). msgspec is strict by
    default: ``"3"`` is not an int.
    """

    name = "msgspec"

    def __init__(self, cls: type) -> None:
        msgspec = _optional("msgspec", "msgspec")
        self.cls = cls
        try:
            self._decode_json = msgspec.json.Decoder(cls).decode
        except TypeError as error:
            raise SerializationError(f"msgspec cannot decode {cls!r}: {error}") from None
        self._encode = msgspec.json.Encoder().encode  # type: ignore[method-assign]
        self._invalid = (msgspec.ValidationError, msgspec.DecodeError)
        self._validation = msgspec.ValidationError

    def _decode(self, data: bytes) -> Any:
        try:
            return self._decode_json(data)
        except self._invalid as error:
            raise self._error(error) from None

    def deserialize_many(self, datas: list[bytes | None]) -> list[Any]:
        decode = self._decode_json
        try:  # one try for the batch: the common case has no bad message
            return [None if data is None else decode(data) for data in datas]
        except self._invalid as error:
            raise self._error(error) from None

    def _error(self, error: Exception) -> DeserializationError:
        if not isinstance(error, self._validation):
            return DeserializationError(f"{self.cls.__name__}: not valid JSON ({error})")
        match = _MSGSPEC_PATH.match(str(error))
        problem, path = (match["problem"], match["path"] or "") if match else (str(error), "")
        missing = _MSGSPEC_MISSING.match(problem)
        if missing:
            return _field_error(self.cls, f"{path}.{missing['field']}".lstrip("."), "missing")
        problem = problem.replace("`", "")
        return _field_error(self.cls, path.lstrip("."), problem[:1].lower() + problem[1:])


def _optional(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SerializationError(f"this serde needs {module}: pip install 'streamer[{extra}]'") from None
