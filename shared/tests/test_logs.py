"""Log storms collapse into state changes: a simulated 60 s broker and database outage (the messages
aiokafka, asyncpg and uvicorn really repeat), counted line by line on a fake clock."""

from __future__ import annotations

import io
import json
import logging

from pythonjsonlogger.json import JsonFormatter

from unified_shared.logs import StormFilter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_logging(clock: FakeClock) -> tuple[io.StringIO, StormFilter, logging.Logger]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    storm = StormFilter(handler.emit, clock=clock)
    handler.addFilter(storm)
    root = logging.getLogger("storm-test")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.INFO)
    return out, storm, root


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_60_s_outage_logs_under_one_line_a_second_and_says_when_it_stopped() -> None:
    clock = FakeClock()
    out, _, root = make_logging(clock)
    client = root.getChild("aiokafka.client")  # names as aiokafka's, under the test's own root
    client.name = "aiokafka.client"
    conn = root.getChild("aiokafka.conn")
    conn.name = "aiokafka.conn"
    server = root.getChild("uvicorn.error")
    server.name = "uvicorn.error"
    app = root.getChild("unified_orders")
    app.name = "unified_orders.handlers"
    repeats = 0
    for tick in range(60 * 20):  # 60 s, 20 ticks a second
        clock.now += 0.05
        client.error("Unable connect to node with id %s: %s", tick % 3, "[Errno 111] Connection refused")
        client.error('Unable connect to "%s:%s": %s', "127.0.0.1", 9092, "Connect call failed")
        conn.warning("Metadata request failed, node %d not ready", tick % 3)
        if tick % 4 == 0:
            server.error("Exception in ASGI application\n")
            repeats += 1
    during = lines(out)
    assert len(during) <= 60, f"{len(during)} lines in a 60 s outage"
    assert len(during) >= 4  # each kind said at least once
    app.warning("one of ours, not a storm")
    app.warning("one of ours, not a storm")
    assert [line["message"] for line in lines(out)[len(during) :]] == ["one of ours, not a storm"] * 2
    clock.now += 31  # recovered: the next record ends the storms, with their counts
    app.info("order placed")
    ended = [line for line in lines(out) if str(line["message"]).startswith("stopped repeating")]
    assert len(ended) == 4
    asgi = next(line for line in ended if line["name"] == "uvicorn.error")
    shown = [line for line in lines(out) if line["name"] == "uvicorn.error" and line not in ended]
    suppressed_then_summarized = sum(int(str(line.get("repeats", 0))) for line in shown)
    assert int(str(asgi["repeats"])) == repeats - 1  # every repeat counted once, after the first line
    assert suppressed_then_summarized <= repeats - 1
