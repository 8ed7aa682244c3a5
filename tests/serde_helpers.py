"""What the serde tests share: a worker that runs while the test waits for its output; Protobuf message classes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from streamer.topology.topology import Topology

T = TypeVar("T")


async def while_worker_runs(topology: Topology, bootstrap: str, state_dir: Path, waiting: Awaitable[T],
                            **settings: Any) -> T:
    """Await ``waiting`` while an at-least-once worker of ``topology`` runs (settings: the error handlers)."""
    config = StreamerConfig(application_id=f"serdes-{uuid.uuid4().hex[:8]}", bootstrap_servers=bootstrap,
                            state_dir=str(state_dir), commit_interval_ms=200, **settings)
    worker = Worker(topology, config)
    running = asyncio.create_task(worker.run())
    try:
        return await waiting
    finally:
        worker.stop()
        await running


def protobuf_messages(package: str = "shop") -> dict[str, type[Any]]:
    """Message classes of one .proto file built from its descriptor, as protoc's output would give them.

    ``Order`` (id, amount, repeated nested ``Order.Line``) and ``Payment`` (order, cents): the
    first message, a nested one and a second top-level one, so each index framing is used.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=f"{package}/orders.proto", package=package, syntax="proto3")
    order = file.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    order.field.add(name="amount", number=2, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    order.field.add(name="lines", number=3, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                    type_name=f".{package}.Order.Line")
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    payment = file.message_type.add(name="Payment")
    payment.field.add(name="order", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    payment.field.add(name="cents", number=2, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in ("Order", "Order.Line", "Payment")}
