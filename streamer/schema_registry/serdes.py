"""Avro, JSON Schema and Protobuf serdes in the Confluent wire format, with schemas from a Schema Registry.

Writing: the serde's schema is registered under its subject (or looked up, with
``auto_register=False``, or not asked for at all with a pinned ``schema_id``) once, at the
first write; each record is the 5-byte header and the payload. Reading: the schema id in
each record picks the writer schema, fetched once per id and kept. The payloads are encoded
here (fastavro, orjson, jsonschema-rs and protobuf), not by confluent-kafka's serializer classes, whose
per-record work (rules, subject strategies, a pure-Python JSON Schema validator) costs 2 to
4 times as much for Avro and 60 to 90 times for JSON Schema (docs/serdes.md).
"""

from __future__ import annotations

import base64
import binascii
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
    """What the registry serdes share: the writer's header, and a reader per writer schema id."""

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


class ProtobufSerde(RegistrySerde):
    """Protobuf messages of one generated class in the Confluent wire format, encoded by protobuf.

    The class is the schema: its ``.proto`` file, as confluent-kafka registers it (the file's
    descriptor, serialized, in base64), is what the serde registers or pins. After the schema
    id each record holds the message's indexes in its file (Confluent's Protobuf framing), then
    the message. Reading parses the payload into the class, whatever the writer's version of
    the file: Protobuf's own evolution rules (fields by number; unknown ones kept, missing ones
    default). A record of another message type (the writer schema's indexes name another
    message) is a ``DeserializationError``. Files that import other files (schema references,
    well-known types included) are refused.
    """

    name = "protobuf"
    schema_type = "PROTOBUF"
    library = "google.protobuf.message"

    def __init__(self, registry: SchemaRegistry | None, message_class: type[Any], *, subject: str | None = None,
                 auto_register: bool = True, schema_id: int | None = None) -> None:
        message = _module(self.library).Message  # before the base class: the check needs it
        if not (isinstance(message_class, type) and issubclass(message_class, message)):
            raise SerializationError(f"ProtobufSerde takes a generated Protobuf message class, not {message_class!r}")
        descriptor = message_class.DESCRIPTOR
        if descriptor.file.dependencies:
            raise SerializationError(
                f"{descriptor.full_name}'s file {descriptor.file.name} imports "
                f"{', '.join(d.name for d in descriptor.file.dependencies)}: schema references, which streamer's "
                "registry serdes do not resolve")
        self.message_class = message_class
        self._indexes = _message_indexes(descriptor)
        self._framing = _encode_indexes(self._indexes)
        schema = base64.standard_b64encode(descriptor.file.serialized_pb).decode("ascii")
        super().__init__(registry, schema, subject=subject, auto_register=auto_register, schema_id=schema_id)

    def _parse(self, schema_str: str) -> Any:
        """The full name of each message of a file by its indexes; empty for a file given as .proto text."""
        try:
            serialized = base64.b64decode(schema_str, validate=True)
        except (binascii.Error, ValueError):
            return {}  # .proto text (as Java clients register it): trust the indexes
        file = importlib.import_module("google.protobuf.descriptor_pb2").FileDescriptorProto()
        try:
            file.ParseFromString(serialized)
        except self._lib.DecodeError as error:
            raise SerializationError(f"not a Protobuf file descriptor ({error}): {schema_str[:200]}") from None
        return _message_names(file)

    def _encode(self, obj: Any) -> bytes:
        if obj.__class__ is not self.message_class:
            raise SerializationError(f"ProtobufSerde({self.message_class.__name__}) writes "
                                     f"{self.message_class.__name__} messages, not {type(obj).__name__}")
        try:
            return self._framing + obj.SerializeToString()
        except self._lib.EncodeError as error:  # a proto2 required field not set
            raise SerializationError(f"ProtobufSerde({self.message_class.__name__}) cannot write {obj!r:.80}: "
                                     f"{error}") from None

    def _reader(self, writer_schema_str: str, schema_id: int) -> Reader:
        names = self._parse(writer_schema_str)
        cls, full_name = self.message_class, self.message_class.DESCRIPTOR.full_name
        decode_error = self._lib.DecodeError

        def decode(payload: memoryview) -> Any:
            indexes, start = _decode_indexes(payload, schema_id)
            written = names.get(tuple(indexes), f"number {indexes}") if names else full_name
            if written != full_name:
                raise DeserializationError(f"record of schema id {schema_id} is message {written} of its schema; "
                                           f"this serde reads {full_name}")
            message = cls()
            try:
                message.ParseFromString(payload[start:])
            except decode_error as error:
                raise DeserializationError(f"Protobuf payload of {len(payload) - start} bytes does not decode as "
                                           f"{full_name} (schema id {schema_id}): {error}") from None
            return message
        return decode


def _message_indexes(descriptor: Any) -> list[int]:
    """The path of a message in its file: its index among the file's messages, then among each parent's nested."""
    path: list[int] = []
    while descriptor.containing_type is not None:
        path.append(descriptor.containing_type.nested_types.index(descriptor))
        descriptor = descriptor.containing_type
    path.append(list(descriptor.file.message_types_by_name.values()).index(descriptor))
    return path[::-1]


def _message_names(file: Any) -> dict[tuple[int, ...], str]:
    """Every message of a FileDescriptorProto by its indexes."""
    names: dict[tuple[int, ...], str] = {}
    todo: list[tuple[tuple[int, ...], str, Any]] = [
        ((i,), f"{file.package}.{m.name}".lstrip("."), m) for i, m in enumerate(file.message_type)]
    while todo:
        path, name, message = todo.pop()
        names[path] = name
        todo += [((*path, i), f"{name}.{nested.name}", nested) for i, nested in enumerate(message.nested_type)]
    return names


def _zigzag_varint(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _encode_indexes(indexes: list[int]) -> bytes:
    """Confluent's framing of message indexes: their count and each, zigzag varints; the first message is one 0."""
    if indexes == [0]:
        return b"\x00"
    return b"".join(_zigzag_varint(n) for n in (len(indexes), *indexes))


def _decode_indexes(payload: memoryview, schema_id: int) -> tuple[list[int], int]:
    """The message indexes at the start of a payload, and where the message begins."""
    numbers: list[int] = []
    position = 0
    count: int | None = None
    while count is None or len(numbers) < count:
        number = shift = 0
        while True:
            if position >= len(payload) or shift > 63:
                raise DeserializationError(f"record of schema id {schema_id} ends inside its Protobuf message "
                                           "indexes (was it written by a Protobuf registry serializer?)")
            byte = payload[position]
            position += 1
            number |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        value = (number >> 1) ^ -(number & 1)
        if count is None:
            if value == 0:
                return [0], position
            if not 0 < value <= 64:
                raise DeserializationError(f"record of schema id {schema_id} has {value} Protobuf message "
                                           "indexes; it is not framed by a Protobuf registry serializer")
            count = value
        else:
            numbers.append(value)
    return numbers, position
