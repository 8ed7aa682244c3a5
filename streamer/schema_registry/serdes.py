"""Avro and JSON Schema serdes in the Confluent wire format, with schemas from a Schema Registry.

Writing: the serde's schema is registered under its subject (or looked up, with
``auto_register=False``, or not asked for at all with a pinned ``schema_id``) once, at the
first write; each record is the 5-byte header and the payload. Reading: the schema id in
each record picks the writer schema, fetched once per id and kept. The payloads are encoded
here (fastavro, orjson and jsonschema-rs), not by confluent-kafka's serializer classes, whose
per-record work (rules, subject strategies, a pure-Python JSON Schema validator) costs 2 to
4 times as much for Avro and 60 to 90 times for JSON Schema (docs/serdes.md).
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from streamer.errors import DeserializationError, SerializationError
from streamer.schema_registry.wire import header, split

if TYPE_CHECKING:
    from streamer.schema_registry.registry import SchemaRegistry

#: Decodes one payload (the bytes after the header) into a value.
Reader = Callable[[memoryview], Any]


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise SerializationError(f"this serde needs {name}: pip install 'streamer[schema-registry]'") from None


def _schema_text(schema: str | Mapping[str, Any] | None) -> str | None:
    if schema is None or isinstance(schema, str):
        return schema
    return orjson.dumps(dict(schema)).decode()


class RegistrySerde:
    """What the Avro and JSON Schema serdes share: the writer's header, and a reader per writer schema id."""

    name = "registry"
    schema_type = ""
    #: The module that encodes payloads (an extra), as ``self._lib``.
    library = ""

    def __init__(self, registry: SchemaRegistry | None, schema: str | Mapping[str, Any] | None = None, *,
                 subject: str | None = None, auto_register: bool = True, schema_id: int | None = None) -> None:
        if registry is None and schema_id is None:
            raise SerializationError(f"{type(self).__name__} needs a SchemaRegistry, or a pinned schema_id "
                                     "with the schema it stands for")
        if registry is None and schema is None:
            raise SerializationError(f"{type(self).__name__} without a registry needs the schema of its schema_id")
        self._lib = _module(self.library)
        self.registry = registry
        self.schema_str = _schema_text(schema)
        self.subject = subject
        self.auto_register = auto_register
        self._id = schema_id
        self._header = None if schema_id is None else header(schema_id)
        self._readers: dict[int, Reader] = {}
        #: the serde's own schema, parsed (None: the serde only reads)
        self._own: Any = None if self.schema_str is None else self._parse(self.schema_str)

    def _parse(self, schema_str: str) -> Any:
        """A schema as the library uses it (raise ``SerializationError`` if it is not one)."""
        raise NotImplementedError

    def _encode(self, obj: Any) -> bytes:
        """The payload of ``obj`` under the serde's own schema, or ``SerializationError`` saying why not."""
        raise NotImplementedError

    def _reader(self, writer_schema_str: str, schema_id: int) -> Reader:
        """A reader of payloads written with ``writer_schema_str`` (into the serde's own schema, if it has one)."""
        raise NotImplementedError

    @property
    def schema_id(self) -> int:
        """The id records are written with: the pinned one, or the registry's for schema and subject (asked once)."""
        if self._id is None:
            if self.schema_str is None:
                raise SerializationError(f"{type(self).__name__} was built without a schema, so it only reads; "
                                         "give it schema= and subject= to write")
            if self.subject is None:
                raise SerializationError(f"{type(self).__name__} needs subject= to register its schema (Kafka's "
                                         "default names it after the topic: '<topic>-value' or '<topic>-key')")
            assert self.registry is not None  # a serde without one has a pinned id
            self._id = self.registry.id_of(self.subject, self.schema_str, self.schema_type, self.auto_register)
            self._header = header(self._id)
        return self._id

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        if self._header is None:
            self.schema_id  # noqa: B018 (registers or looks up at the first write)
        assert self._header is not None
        return self._header + self._encode(obj)

    def serialize_many(self, objs: list[Any]) -> list[bytes | None]:
        dump = self.serialize
        return [dump(obj) for obj in objs]

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        schema_id, payload = split(data)
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._reader_of(schema_id)
        return reader(payload)

    def deserialize_many(self, datas: list[bytes | None]) -> list[Any]:
        load = self.deserialize
        return [load(data) for data in datas]

    def _reader_of(self, schema_id: int) -> Reader:
        if schema_id == self._id and self.schema_str is not None:
            writer = self.schema_str
        elif self.registry is None:
            raise DeserializationError(f"schema id {schema_id} is not this serde's pinned id {self._id}, and "
                                       "without a SchemaRegistry it reads no other")
        else:
            found = self.registry.schema(schema_id)
            if found.schema_type != self.schema_type:
                raise DeserializationError(f"schema id {schema_id} is a {found.schema_type} schema; "
                                           f"{type(self).__name__} reads {self.schema_type} records only")
            writer = found.schema_str
        reader = self._readers[schema_id] = self._reader(writer, schema_id)
        return reader


class AvroSerde(RegistrySerde):
    """Avro records (Python dicts) in the Confluent wire format, encoded by fastavro.

    ``schema`` is the Avro schema (JSON text or a dict): the writer schema, and the reader
    schema records of other writer schemas are resolved into (Avro schema evolution).
    Without it the serde only reads, each record as its writer schema says.
    """

    name = "avro"
    schema_type = "AVRO"
    library = "fastavro"

    def _parse(self, schema_str: str) -> Any:
        try:
            return self._lib.parse_schema(orjson.loads(schema_str))
        except (orjson.JSONDecodeError, self._lib.schema.SchemaParseException, ValueError, TypeError) as error:
            raise SerializationError(f"not an Avro schema ({error}): {schema_str[:200]}") from None

    def _encode(self, obj: Any) -> bytes:
        buffer = io.BytesIO()
        try:
            self._lib.schemaless_writer(buffer, self._own, obj)
        except Exception as error:  # fastavro raises what the first field that does not fit makes it raise
            raise SerializationError(f"AvroSerde({self._own.get('name', '?')}) cannot write {obj!r:.80}: "
                                     f"{self._why_not(obj, error)}") from None
        return buffer.getvalue()

    def _why_not(self, obj: Any, error: Exception) -> str:
        """fastavro's validator names the field that does not fit; it runs only once a write failed."""
        try:
            self._lib.validation.validate(obj, self._own, raise_errors=True)
        except self._lib.validation.ValidationError as invalid:
            return "; ".join(str(e) for e in invalid.errors)
        return repr(error)

    def _reader(self, writer_schema_str: str, schema_id: int) -> Reader:
        writer = self._parse(writer_schema_str)
        reader = None if self._own is None or self._own == writer else self._own
        read = self._lib.schemaless_reader

        def decode(payload: memoryview) -> Any:
            try:
                return read(io.BytesIO(payload), writer, reader)
            except Exception as error:  # short or corrupt payloads make fastavro raise many kinds of errors
                into = "" if reader is None else " into this serde's schema"
                raise DeserializationError(
                    f"Avro payload of {len(payload)} bytes does not decode with schema id {schema_id}{into}: {error!r}"
                ) from None
        return decode


def _path(parts: Any) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


class JsonSchemaSerde(RegistrySerde):
    """JSON values in the Confluent wire format, validated against a JSON Schema both ways (by jsonschema-rs).

    ``schema`` (JSON text or a dict) validates what is written, and what is read; without
    it the serde only reads, validating each record against its writer schema. A record
    that does not validate raises ``DeserializationError`` naming the field, for the
    deserialization handler. The draft is the schema's ``$schema``, else 2020-12.
    """

    name = "json_schema"
    schema_type = "JSON"
    library = "jsonschema_rs"

    def _parse(self, schema_str: str) -> Any:
        """The schema's validator."""
        try:
            return self._lib.validator_for(orjson.loads(schema_str))
        except (orjson.JSONDecodeError, ValueError) as error:  # jsonschema-rs's ValidationError is a ValueError
            raise SerializationError(f"not a JSON Schema ({str(error).splitlines()[0]}): {schema_str[:200]}") \
                from None

    @staticmethod
    def _problem(validator: Any, value: Any) -> str:
        error = next(iter(validator.iter_errors(value)))
        where = f"field '{_path(error.instance_path)}'" if error.instance_path else "value"
        return f"{where}: {error.message}"

    def _encode(self, obj: Any) -> bytes:
        if not self._own.is_valid(obj):
            raise SerializationError(f"JsonSchemaSerde({self.subject}) cannot write {obj!r:.80}: "
                                     f"{self._problem(self._own, obj)}")
        try:
            return orjson.dumps(obj)
        except TypeError as error:
            raise SerializationError(f"JsonSchemaSerde({self.subject}) cannot write {obj!r:.80}: {error}") from None

    def _reader(self, writer_schema_str: str, schema_id: int) -> Reader:
        validator = self._own if self._own is not None else self._parse(writer_schema_str)
        is_valid, loads, problem = validator.is_valid, orjson.loads, self._problem

        def decode(payload: memoryview) -> Any:
            try:
                value = loads(payload)
            except orjson.JSONDecodeError as error:
                raise DeserializationError(f"record of schema id {schema_id} is not valid JSON ({error})") from None
            if not is_valid(value):
                raise DeserializationError(f"record of schema id {schema_id} does not fit its JSON Schema: "
                                           f"{problem(validator, value)}")
            return value
        return decode
