"""One Schema Registry connection for an app's serdes: confluent-kafka's client, and the caches the hot path reads.

confluent-kafka's ``SchemaRegistryClient`` speaks plain synchronous HTTP. A serde asks it
only when it meets something new (its own schema's id at its first write, a writer schema
id at the first record that carries it) and keeps the answer, so a batch of records whose
schemas are known does no I/O at all. The one request for something new blocks the worker's
event loop for its round trip (a few milliseconds to a registry nearby); call
``serde.schema_id`` at start-up to make the first write's request before any record.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from streamer.errors import DeserializationError, SchemaRegistryError, SerializationError
from streamer.schema_registry.serdes import AvroSerde, JsonSchemaSerde, ProtobufSerde

T = TypeVar("T")

#: A registry answers a lookup of something it does not have with 404 and one of these codes.
_SUBJECT_NOT_FOUND, _VERSION_NOT_FOUND, _SCHEMA_NOT_FOUND = 40401, 40402, 40403


def _confluent() -> Any:
    try:
        return importlib.import_module("confluent_kafka.schema_registry")
    except ImportError:
        raise SerializationError(
            "the Schema Registry serdes need confluent-kafka, fastavro, jsonschema-rs and protobuf: "
            "pip install 'streamer[schema-registry]'"
        ) from None


class SchemaRegistry:
    """A registry at ``url`` (for Apicurio, its Confluent-compatible API: ``.../apis/ccompat/v7``).

    ``config`` goes to confluent-kafka's ``SchemaRegistryClient`` as is (``basic.auth.user.info``,
    ``ssl.ca.location``, ``max.retries``, ...); ``timeout_s`` bounds each HTTP request.
    Make one per registry and build the serdes from it: they share its caches.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0, config: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self._config = {"url": self.url, "timeout": timeout_s, **(config or {})}
        self._client: Any = None
        self._by_id: dict[int, Any] = {}
        self._ids: dict[tuple[str, str, str], int] = {}

    @property
    def client(self) -> Any:
        """confluent-kafka's client, made at first use (no connection is opened before a request)."""
        if self._client is None:
            self._client = _confluent().SchemaRegistryClient(dict(self._config))
        return self._client

    def schema(self, schema_id: int) -> Any:
        """The schema (confluent-kafka's ``Schema``) registered under ``schema_id``; asked once per id.

        An id the registry does not know is the record's fault (written against another
        registry, or not framed by a registry serializer at all): ``DeserializationError``.
        """
        found = self._by_id.get(schema_id)
        if found is None:
            found = self._call(f"fetch schema id {schema_id}", lambda: self.client.get_schema(schema_id),
                               missing=lambda: DeserializationError(
                                   f"schema id {schema_id} is not in the registry at {self.url}: was the record "
                                   "written against another registry, or not by a registry serializer?"))
            if found.references:
                raise SchemaRegistryError(f"schema id {schema_id} at {self.url} has references to other schemas, "
                                          "which streamer's registry serdes do not resolve")
            self._by_id[schema_id] = found
        return found

    def id_of(self, subject: str, schema_str: str, schema_type: str, register: bool) -> int:
        """The id of a schema under ``subject``: registered if ``register``, else looked up (it must be there)."""
        key = (subject, schema_type, schema_str)
        known = self._ids.get(key)
        if known is not None:
            return known
        schema = _confluent().Schema(schema_str, schema_type)
        if register:
            schema_id = self._call(f"register a {schema_type} schema under subject {subject!r}",
                                   lambda: self.client.register_schema(subject, schema))
        else:
            schema_id = self._call(
                f"look up the {schema_type} schema under subject {subject!r}",
                lambda: self.client.lookup_schema(subject, schema).schema_id,
                missing=lambda: SchemaRegistryError(
                    f"subject {subject!r} at {self.url} has no such {schema_type} schema; register it first or "
                    "build the serde with auto_register=True"))
        self._ids[key] = schema_id
        return schema_id

    def _call(self, what: str, request: Callable[[], T], missing: Callable[[], Exception] | None = None) -> T:
        """``request()``, its failures as streamer's errors: what the registry lacks, or that it failed."""
        failure = _confluent().SchemaRegistryError
        try:
            return request()
        except failure as error:
            not_found = error.http_status_code == 404 and error.error_code in (
                _SUBJECT_NOT_FOUND, _VERSION_NOT_FOUND, _SCHEMA_NOT_FOUND)
            if not_found and missing is not None:
                raise missing() from None
            raise SchemaRegistryError(f"the schema registry at {self.url} could not {what}: {error}") from error
        except Exception as error:  # httpx's transport errors, timeouts, a malformed answer
            raise SchemaRegistryError(
                f"the schema registry at {self.url} did not answer when asked to {what}: {error!r}; "
                "check that it runs and that the url (and its path, e.g. /apis/ccompat/v7 for Apicurio) is right"
            ) from error

    def avro(self, schema: str | Mapping[str, Any] | None = None, *, subject: str | None = None,
             auto_register: bool = True, schema_id: int | None = None) -> AvroSerde:
        """An Avro serde of this registry (see ``AvroSerde``)."""
        return AvroSerde(self, schema, subject=subject, auto_register=auto_register, schema_id=schema_id)

    def json_schema(self, schema: str | Mapping[str, Any] | None = None, *, subject: str | None = None,
                    auto_register: bool = True, schema_id: int | None = None) -> JsonSchemaSerde:
        """A JSON Schema serde of this registry (see ``JsonSchemaSerde``)."""
        return JsonSchemaSerde(self, schema, subject=subject, auto_register=auto_register, schema_id=schema_id)

    def protobuf(self, message_class: type[Any], *, subject: str | None = None, auto_register: bool = True,
                 schema_id: int | None = None) -> ProtobufSerde:
        """A Protobuf serde of this registry for one generated message class (see ``ProtobufSerde``)."""
        return ProtobufSerde(self, message_class, subject=subject, auto_register=auto_register, schema_id=schema_id)
