"""The foreign-key table join, after Kafka Streams' KIP-213 design.

A row of the left table (key K, value V) joins the row of the right table whose key
is ``extractor(V)``. The right row may live in any partition, so the join runs in two
places that talk through two internal topics:

- left side (the left table's task): ``SubscriptionSend`` turns each left update into
  subscriptions, keyed by foreign key, on the *subscription topic* (partitioned like the
  right table); ``ResponseJoin`` reads the *response topic* (partitioned like the left
  table) and joins the response with the left row as it is now.
- right side (the right table's task): ``SubscriptionReceive`` keeps every subscription in
  the subscription store, keyed (foreign key, primary key), and answers it with the right
  row; ``ForeignRowUpdate`` answers every subscriber of a right row when the row changes.

Every subscription carries a hash of the left value it was made for, and every response
carries that hash back: a response whose hash is not the hash of the left row's current
value answers a value the row no longer has, and is dropped. So a row whose foreign key
changes quickly never shows a result of an older foreign key.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import struct
from typing import Any, Callable

from streamer.errors import DeserializationError
from streamer.processors.api import Processor
from streamer.processors.change import Change
from streamer.processors.value_getters import GetterSpec, ValueGetter
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.timestamped import decode, encode

log = logging.getLogger("streamer.fk_join")

_VERSION = 0
_INT = struct.Struct(">i")
_HEADER = struct.Struct(">BBB")  # version, instruction or flags, hash present
_HASH_SIZE = 16


class Instruction(enum.IntEnum):
    """What a subscription asks of the right side (Kafka Streams' SubscriptionWrapper.Instruction)."""

    #: Unsubscribe; no response (the row subscribed to another foreign key, which answers).
    DELETE_NO_PROPAGATE = 0
    #: Unsubscribe and respond without a right value: the left row's result goes away.
    DELETE_AND_PROPAGATE = 1
    #: Subscribe and respond, with no right value if there is no right row (the old result must go).
    PROPAGATE_NULL_IF_NO_VALUE = 2
    #: Subscribe; respond only if there is a right row (there is no old result to take back).
    PROPAGATE_ONLY_IF_VALUE = 3


def value_hash(data: bytes | None) -> bytes | None:
    """The 16-byte digest a subscription carries of the left value bytes it was made for."""
    return None if data is None else hashlib.blake2b(data, digest_size=_HASH_SIZE).digest()


class Subscription:
    """A left row's subscription to a right row: ``primary_key`` is the left key's bytes."""

    __slots__ = ("instruction", "value_hash", "partition", "primary_key")

    def __init__(self, instruction: Instruction, value_hash: bytes | None, partition: int, primary_key: bytes) -> None:
        self.instruction = instruction
        self.value_hash = value_hash
        #: the left task's partition: the response goes back there
        self.partition = partition
        self.primary_key = primary_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subscription) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Subscription({self.instruction.name}, key={self.primary_key!r}, partition={self.partition})"


class SubscriptionSerde:
    """Subscriptions on the subscription topic and in the subscription store.

    Byte layout: version (0), instruction, 1 if a hash follows else 0, the 16-byte hash
    if any, the left partition (4 bytes, big-endian), then the left key's bytes.
    """

    def serialize(self, sub: Subscription | None) -> bytes | None:
        if sub is None:
            return None
        digest = sub.value_hash
        head = _HEADER.pack(_VERSION, sub.instruction, digest is not None)
        return head + (digest or b"") + _INT.pack(sub.partition) + sub.primary_key

    def deserialize(self, data: bytes | None) -> Subscription | None:
        if data is None:
            return None
        instruction, has_hash = _header(data, "subscription")
        at = _HEADER.size
        digest = data[at:at + _HASH_SIZE] if has_hash else None
        at += _HASH_SIZE if has_hash else 0
        try:
            kind = Instruction(instruction)
        except ValueError:
            raise DeserializationError(f"subscription with unknown instruction {instruction}") from None
        return Subscription(kind, digest, _INT.unpack_from(data, at)[0], data[at + _INT.size:])


class Response:
    """The right row's value (None: no row) for the left value whose hash ``value_hash`` is."""

    __slots__ = ("value_hash", "foreign_value", "partition")

    def __init__(self, value_hash: bytes | None, foreign_value: Any, partition: int) -> None:
        self.value_hash = value_hash
        self.foreign_value = foreign_value
        self.partition = partition

    def __repr__(self) -> str:
        return f"Response({self.foreign_value!r}, partition={self.partition})"


class ResponseSerde:
    """Responses on the response topic; ``inner`` is the right table's value serde.

    Byte layout: version (0), 1 if a right value follows else 0, 1 if a hash follows
    else 0, the 16-byte hash if any, the left partition (4 bytes, big-endian), then the
    right value's bytes if any.
    """

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, response: Response | None) -> bytes | None:
        if response is None:
            return None
        value = None if response.foreign_value is None else self.inner.serialize(response.foreign_value)
        digest = response.value_hash
        head = _HEADER.pack(_VERSION, value is not None, digest is not None)
        return head + (digest or b"") + _INT.pack(response.partition) + (value or b"")

    def deserialize(self, data: bytes | None) -> Response | None:
        if data is None:
            return None
        has_value, has_hash = _header(data, "response")
        at = _HEADER.size
        digest = data[at:at + _HASH_SIZE] if has_hash else None
        at += _HASH_SIZE if has_hash else 0
        value = self.inner.deserialize(data[at + _INT.size:]) if has_value else None
        return Response(digest, value, _INT.unpack_from(data, at)[0])


def _header(data: bytes, what: str) -> tuple[int, int]:
    """The second and third header bytes, once the length and version are checked."""
    if len(data) < _HEADER.size + _INT.size:
        raise DeserializationError(f"foreign-key join {what} of {len(data)} bytes is too short")
    version, second, has_hash = _HEADER.unpack_from(data)
    if version != _VERSION:
        raise DeserializationError(
            f"foreign-key join {what} of version {version}; this streamer reads version {_VERSION} "
            "(was the topic written by another program or a newer streamer?)"
        )
    return second, has_hash


def combined_key(foreign_key: bytes, primary_key: bytes) -> bytes:
    """Subscription store key: foreign key length (4 bytes), foreign key, primary key (KS's CombinedKey)."""
    return _INT.pack(len(foreign_key)) + foreign_key + primary_key


def primary_key_of(key: bytes) -> bytes:
    return key[_INT.size + _INT.unpack_from(key)[0]:]


def to_primary_partition(key: Any, response: Response, count: int) -> int:
    """Response-topic partitioner: back to the partition of the left task that subscribed."""
    return response.partition


class SubscriptionSend(Processor):
    """Left table updates -> subscriptions keyed by foreign key (bytes), as Kafka Streams 4 sends them.

    Left join: unsubscribe from the old foreign key if it changed, then always subscribe to
    the new one (None included: that subscription is never stored, only answered, so the
    row gets ``joiner(value, None)``, or its delete). Inner join: a row whose foreign key is
    None is dropped (its old result deleted); a new row subscribes only for a response if
    it joins; a changed foreign key also asks for a response if it does not join, so the
    old result is deleted.
    """

    def __init__(self, name: str, extractor: Callable[[Any], Any], key_serde: Serde, value_serde: Serde,
                 foreign_key_serde: Serde, left_join: bool) -> None:
        super().__init__(name)
        self.extractor = extractor
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.foreign_key_serde = foreign_key_serde
        self.left_join = left_join

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in records:
            if record.key is None:
                continue
            try:
                self._subscriptions(record, out)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return out

    def _subscriptions(self, record: Record, out: list[Record]) -> None:
        change: Change = record.value
        old, new = change.old, change.new
        if old is None and new is None:
            return
        extract, dump_fk = self.extractor, self.foreign_key_serde.serialize
        old_fk = None if old is None else dump_fk(extract(old))
        new_fk = None if new is None else dump_fk(extract(new))
        send = _Sender(self, record, out)
        if self.left_join:
            if old_fk is not None and old_fk != new_fk:
                send(old_fk, Instruction.DELETE_NO_PROPAGATE)
            send(new_fk, Instruction.PROPAGATE_NULL_IF_NO_VALUE)
        elif new is None or new_fk is None:
            if new is not None:
                self.context.record_dropped(self.name, record, "the foreign key extractor gave None (inner join)")
            if old_fk is not None:
                send(old_fk, Instruction.DELETE_AND_PROPAGATE)
        elif old_fk is None:
            send(new_fk, Instruction.PROPAGATE_ONLY_IF_VALUE)
        elif old_fk != new_fk:
            send(old_fk, Instruction.DELETE_NO_PROPAGATE)
            send(new_fk, Instruction.PROPAGATE_NULL_IF_NO_VALUE)
        else:
            send(new_fk, Instruction.PROPAGATE_ONLY_IF_VALUE)


class _Sender:
    """Builds one left update's subscriptions; the key bytes and the value hash are made once."""

    __slots__ = ("processor", "record", "out", "primary_key", "digest")

    def __init__(self, processor: SubscriptionSend, record: Record, out: list[Record]) -> None:
        self.processor = processor
        self.record = record
        self.out = out
        self.primary_key = processor.key_serde.serialize(record.key) or b""
        new = record.value.new
        self.digest = None if new is None else value_hash(processor.value_serde.serialize(new))

    def __call__(self, foreign_key: bytes | None, instruction: Instruction) -> None:
        record = self.record
        partition = self.processor.context.partition
        subscription = Subscription(instruction, self.digest, partition, self.primary_key)
        self.out.append(Record(foreign_key, subscription, record.timestamp, record.headers, record.offset))


class SubscriptionReceive(Processor):
    """Right side: stores (or removes) each subscription and answers it with the right row.

    A response's timestamp is the later of the subscription's and the right row's.
    """

    def __init__(self, name: str, store_name: str, foreign_key_serde: Serde, getter: GetterSpec) -> None:
        super().__init__(name)
        self.store_name = store_name
        self.foreign_key_serde = foreign_key_serde
        self.getter_spec = getter
        self.store: Any = None
        self.getter: ValueGetter | None = None
        self.serde = SubscriptionSerde()

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)
        self.getter = self.getter_spec.build(context)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in records:
            try:
                response = self._receive(record)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            if response is not None:
                out.append(response)
        return out

    def _receive(self, record: Record) -> Record | None:
        foreign_key: bytes | None = record.key
        sub: Subscription = record.value
        if sub is None:
            return None
        instruction, timestamp = sub.instruction, record.timestamp
        if foreign_key is None:  # a left join's row without a foreign key: answered, never stored
            if instruction is not Instruction.PROPAGATE_NULL_IF_NO_VALUE:
                return None
            return Record(sub.primary_key, Response(sub.value_hash, None, sub.partition), timestamp, record.headers,
                          record.offset)
        key = combined_key(foreign_key, sub.primary_key)
        if instruction in (Instruction.DELETE_NO_PROPAGATE, Instruction.DELETE_AND_PROPAGATE):
            self.store.delete(key)
        else:
            self.store.put(key, encode(timestamp, self.serde.serialize(sub) or b""))
        if instruction is Instruction.DELETE_NO_PROPAGATE:
            return None
        assert self.getter is not None
        row = self.getter.get(self.foreign_key_serde.deserialize(foreign_key), foreign_key)
        if row is not None and row[1] > timestamp:
            timestamp = row[1]
        if instruction is Instruction.DELETE_AND_PROPAGATE:
            value = None
        elif row is None and instruction is Instruction.PROPAGATE_ONLY_IF_VALUE:
            return None
        else:
            value = None if row is None else row[0]
        return Record(sub.primary_key, Response(sub.value_hash, value, sub.partition), timestamp, record.headers,
                      record.offset)


class ForeignRowUpdate(Processor):
    """Right side: a right row changed, so every left row subscribed to it gets a response.

    The subscribers are a prefix scan of the subscription store (combined keys sort by
    foreign key first). Responses keep the right update's timestamp, as Kafka Streams'.
    """

    def __init__(self, name: str, store_name: str, foreign_key_serde: Serde) -> None:
        super().__init__(name)
        self.store_name = store_name
        self.foreign_key_serde = foreign_key_serde
        self.store: Any = None
        self.serde = SubscriptionSerde()

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        load = self.serde.deserialize
        for record in records:
            if record.key is None:
                continue
            try:
                foreign_key = self.foreign_key_serde.serialize(record.key) or b""
                prefix = _INT.pack(len(foreign_key)) + foreign_key
                subscribers = list(self.store.prefix(prefix))
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            value = record.value.new
            for key, stored in subscribers:
                sub = load(decode(stored)[1])
                assert sub is not None
                out.append(Record(primary_key_of(key), Response(sub.value_hash, value, sub.partition),
                                  record.timestamp, record.headers, record.offset))
        return out


class ResponseJoin(Processor):
    """Left side: joins a response with the left row as it is now, or drops it as stale.

    Forwards the join result as a plain value (None: delete) for the result table, which
    stores it and forwards ``Change(new, old)``. Inner join: no right value means delete;
    left join: ``joiner(value, None)``, and a delete only once the left row is gone.
    """

    def __init__(self, name: str, getter: GetterSpec, key_serde: Serde, value_serde: Serde,
                 joiner: Callable[[Any, Any], Any], left_join: bool) -> None:
        super().__init__(name)
        self.getter_spec = getter
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.joiner = joiner
        self.left_join = left_join
        self.getter: ValueGetter | None = None

    def init(self, context: Any) -> None:
        super().init(context)
        self.getter = self.getter_spec.build(context)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        dump_key, dump_value, joiner = self.key_serde.serialize, self.value_serde.serialize, self.joiner
        assert self.getter is not None
        get = self.getter.get
        for record in records:
            response: Response = record.value
            if record.key is None or response is None:
                continue
            try:
                row = get(record.key, dump_key(record.key) or b"")
                current = None if row is None else row[0]
                if response.value_hash != (None if row is None else value_hash(dump_value(current))):
                    log.debug("dropped a stale foreign-key join response for key %r", record.key)
                    continue
                foreign = response.foreign_value
                if foreign is None and (not self.left_join or row is None):
                    result = None
                else:
                    result = joiner(current, foreign)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            out.append(record.with_value(result))
        return out
