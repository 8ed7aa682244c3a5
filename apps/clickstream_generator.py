"""Writes synthetic clickstream events (with bots and malformed events mixed in) to a topic.

    python -m apps.clickstream_generator --bootstrap-servers 127.0.0.1:9092 --count 10000
"""

from __future__ import annotations

import argparse
import asyncio
import random
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from apps.clickstream import topics

EVENT_TYPES = ("click", "click", "click", "view", "view", "purchase", "Scroll")
HOSTS = ("www.shop.example", "shop.example", "blog.example")
AGENTS = ("Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (Macintosh)", "Googlebot/2.1", "HeadlessChrome/120")


def make_event(rng: random.Random, index: int) -> tuple[str, dict[str, Any]]:
    user = f"user-{rng.randrange(500)}"
    event: dict[str, Any] = {
        "user_id": user,
        "event_type": rng.choice(EVENT_TYPES),
        "url": f"https://{rng.choice(HOSTS)}/p/{rng.randrange(100)}/?ref={index}",
        "user_agent": rng.choice(AGENTS),
        "ts": 1_700_000_000_000 + index * 10,
    }
    if event["event_type"] == "purchase":
        event["price"] = round(rng.uniform(1, 200), 2)
    if rng.random() < 0.02:
        del event["url"]
    return user, event


async def generate(bootstrap: str, topic: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for index in range(count):
            key, event = make_event(rng, index)
            await producer.send(topic, orjson.dumps(event), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default=topics()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(generate(args.bootstrap_servers, args.topic, args.count, args.seed))
    print(f"wrote {args.count} events to {args.topic}")


if __name__ == "__main__":
    main()
