"""``streamer query``: ask a running worker's query server about a store, and print the JSON answer.

Any worker answers for any key (it forwards to the key's worker), so ``--server`` can
name any of them. A "retry" answer (503: a rebalance, a task still restoring) is asked
again after its Retry-After until ``--wait`` seconds have passed.
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from streamer.errors import QueryError

#: The longest a single request may take: a forwarded query gives up after 10 s on the server.
_REQUEST_TIMEOUT_S = 15.0


def add_query_parser(commands: argparse._SubParsersAction) -> None:
    query = commands.add_parser(
        "query", help="read a store of a running application through a worker's query server (application_server)",
        description="KEY alone: its value (key-value store), its windows (window store) or its sessions (session "
                    "store). Without KEY: every entry, or those of --from/--to or --prefix.")
    query.add_argument("store")
    query.add_argument("key", nargs="?", default=None)
    query.add_argument("--server", required=True, metavar="HOST:PORT", help="any worker's application_server")
    query.add_argument("--from", dest="low", default=None,
                       help="key-value: first key of a range; window and session stores: a time in epoch ms")
    query.add_argument("--to", dest="high", default=None,
                       help="key-value: the key the range ends before; window and session stores: a time in epoch ms")
    query.add_argument("--prefix", default=None, help="the keys that start with this (key-value stores)")
    query.add_argument("--metadata", action="store_true",
                       help="where KEY lives (its partition and worker), or without KEY every worker's partitions")
    query.add_argument("--key-format", choices=("string", "json", "base64"), default="string",
                       help="how KEY, --from/--to and --prefix are written (default: string)")
    query.add_argument("--value-format", choices=("json", "base64"), default="json")
    query.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                       help="ask again while the answer is 'retry' (a rebalance) for up to this long (default 30)")


def run_query(args: argparse.Namespace) -> int:
    """Print the answer; 0 if found, 1 if the store has no such key, errors raise QueryError."""
    client = QueryClient(args.server, args.wait)
    store = urllib.parse.quote(args.store, safe="")
    key = None if args.key is None else urllib.parse.quote(args.key, safe="")
    formats = {"key_format": args.key_format, "value_format": args.value_format}
    if args.metadata:
        path = "/metadata" if key is None else f"/metadata/stores/{store}/keys/{key}"
        return client.show(path, formats)
    kinds = client.get("/metadata", {})[1].get("stores", {})
    if args.store not in kinds:
        raise QueryError(f"the application has no store {args.store!r}; it has {sorted(kinds)}")
    kind = kinds[args.store]
    times = {name: value for name, value in (("from", args.low), ("to", args.high)) if value is not None}
    if kind == "session":
        times = {name: value for name, value in (("earliest_end", args.low), ("latest_start", args.high))
                 if value is not None}
    if args.prefix is not None:
        if kind != "key_value" or key is not None:
            raise QueryError("--prefix reads a key-value store, without KEY")
        return client.show(f"/stores/{store}/prefix/{urllib.parse.quote(args.prefix, safe='')}", formats)
    if key is not None:
        section = {"key_value": "keys", "window": "windows", "session": "sessions"}[kind]
        return client.show(f"/stores/{store}/{section}/{key}", {**formats, **(times if kind != "key_value" else {})})
    if times and kind == "key_value":
        return client.show(f"/stores/{store}/range", {**formats, **times})
    if times and kind == "window":
        return client.show(f"/stores/{store}/windows", {**formats, **times})
    return client.show(f"/stores/{store}/all", formats)


class QueryClient:
    """GETs against one query server, asking again on a retryable answer until ``wait_s`` is over."""

    def __init__(self, server: str, wait_s: float) -> None:
        self.base = f"http://{server}"
        self.wait_s = wait_s

    def show(self, path: str, params: dict[str, str]) -> int:
        status, body = self.get(path, params)
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0 if status == 200 else 1

    def get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """(status, JSON body) of a 200 or 404 answer; anything else raises QueryError with the server's message."""
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        deadline = time.monotonic() + self.wait_s
        while True:
            status, body, retry_after = self._get_once(url)
            if status in (200, 404) and body.get("error") != "unknown_store":
                return status, body
            message = body.get("message", f"HTTP {status}")
            if status != 503 or time.monotonic() + retry_after > deadline:
                raise QueryError(f"{self.base} answered {status}: {message}")
            time.sleep(retry_after)

    def _get_once(self, url: str) -> tuple[int, Any, float]:
        try:
            with urllib.request.urlopen(url, timeout=_REQUEST_TIMEOUT_S) as response:
                return response.status, orjson.loads(response.read()), 0.0
        except urllib.error.HTTPError as error:
            try:
                body = orjson.loads(error.read())
            except orjson.JSONDecodeError:
                body = {"message": f"HTTP {error.code} {error.reason}"}
            return error.code, body, float(error.headers.get("Retry-After") or 1)
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise QueryError(f"no query server answered at {self.base} ({reason}); is a worker running there "
                             "with application_server set to that address?") from None
