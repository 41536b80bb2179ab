from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.alerts._databases import SQL_BACKENDS
from tests.alerts._servers import CaptureServer
from tests.contracts.test_notifier_contract import MESSAGE
from tests.store.backends import backend_url
from watchkeeper.alerts import Backoff, DeliveryWorker, Outbox, Receiver
from watchkeeper.alerts.notifiers import WebhookNotifier
from watchkeeper.alerts.outbox import InMemoryOutbox, OutboxItem, OutboxStatus
from watchkeeper.store.outbox import SqlOutbox

OutboxFactory = Callable[[], Outbox]


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def make_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutboxFactory]:
    if request.param == "memory":
        shared = InMemoryOutbox()
        yield lambda: shared
        return
    opened: list[SqlOutbox] = []
    with backend_url(request.param, tmp_path) as url:

        def reopen() -> Outbox:
            opened.append(SqlOutbox(engine=url))
            return opened[-1]

        yield reopen
        for outbox in opened:
            outbox.close()


def item(key: str, at: float, receiver: str = "team") -> OutboxItem:
    return OutboxItem(
        key=key,
        receiver=receiver,
        integration=0,
        payload={**MESSAGE, "receiver": receiver},
        created_at=at,
    )


def webhook(server: CaptureServer, name: str = "team") -> dict[str, Receiver]:
    return {name: Receiver(name=name, notifiers=(WebhookNotifier(url=server.url(), timeout=2.0),))}


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=60.0)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for attempt in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(delay, 6) for delay in delays[-4:]}) == 4  # jittered, not identical


def test_enqueue_is_idempotent_by_key(make_outbox: OutboxFactory) -> None:
    outbox = make_outbox()
    assert outbox.enqueue([item("a", 0.0), item("b", 1.0)]) == 2
    assert outbox.enqueue([item("a", 5.0), item("c", 6.0)]) == 1
    assert [entry.key for entry in outbox.items()] == ["a", "b", "c"]


def test_receiver_down_for_minutes_gets_everything_in_order_when_back(
    make_outbox: OutboxFactory,
) -> None:
    server = CaptureServer().start()
    port = server.port
    outbox = make_outbox()
    worker = DeliveryWorker(
        outbox=outbox, receivers=webhook(server), seed=1, backoff=Backoff(initial=1.0, cap=30.0)
    )
    server.stop()  # the receiver goes down
    outbox.enqueue([item(f"n{index}", float(index)) for index in range(5)])
    now = 10.0
    while now < 10.0 + 600.0:  # ten minutes of retries on a fake clock
        report = worker.run_once(now)
        assert report.delivered == ()
        now += 5.0
    failed = outbox.items(status=OutboxStatus.PENDING)
    assert len(failed) == 5
    assert "ConnectError" in (failed[0].last_error or "")
    # Only the head of the queue was tried each time; the others waited behind it.
    assert failed[0].attempts > 5
    assert failed[1].attempts == 0
    back = CaptureServer(port=port).start()
    try:
        delivered: list[str] = []
        for _ in range(3):
            now += 60.0
            delivered += worker.run_once(now).delivered
    finally:
        back.stop()
    assert delivered == [f"n{index}" for index in range(5)]
    assert [request.headers["idempotency-key"] for request in back.requests] == delivered
    history = outbox.items(status=OutboxStatus.DELIVERED)
    assert [entry.key for entry in history] == delivered
    assert all(entry.delivered_at is not None for entry in history)


def test_a_failing_receiver_does_not_block_another(
    make_outbox: OutboxFactory, http_receiver: CaptureServer
) -> None:
    outbox = make_outbox()
    receivers = {
        "down": Receiver(name="down", notifiers=(WebhookNotifier(url="http://127.0.0.1:9/"),)),
        **webhook(http_receiver, "up"),
    }
    outbox.enqueue([item("a", 0.0, "down"), item("b", 1.0, "up"), item("c", 2.0, "down")])
    report = DeliveryWorker(outbox=outbox, receivers=receivers, seed=0).run_once(10.0)
    assert (report.delivered, report.failed, report.deferred) == (("b",), ("a",), ("c",))


def test_new_worker_after_a_crash_delivers_claimed_items_after_the_lease(
    make_outbox: OutboxFactory, http_receiver: CaptureServer
) -> None:
    outbox = make_outbox()
    outbox.enqueue([item("a", 0.0)])
    assert [entry.key for entry in outbox.claim(1.0, limit=10, lease=120.0)] == ["a"]
    # The claiming worker died before delivering. A new worker over the same outbox:
    restarted = DeliveryWorker(outbox=make_outbox(), receivers=webhook(http_receiver), seed=0)
    assert restarted.run_once(60.0).delivered == ()
    assert restarted.run_once(121.0).delivered == ("a",)
    assert len(http_receiver.requests) == 1


def test_items_are_given_up_after_give_up_after_and_kept(make_outbox: OutboxFactory) -> None:
    outbox = make_outbox()
    outbox.enqueue([item("a", 0.0, "ghost")])
    worker = DeliveryWorker(outbox=outbox, receivers={}, give_up_after=100.0, seed=0)
    assert worker.run_once(1.0).failed == ("a",)
    assert worker.run_once(200.0).dead == ("a",)
    (dead,) = outbox.items(status=OutboxStatus.DEAD)
    assert dead.attempts == 2
    assert dead.last_error == "no receiver named 'ghost' is configured"


def test_concurrent_workers_claim_every_item_exactly_once(sql_url: str) -> None:
    # Each worker has its own outbox object (its own connections, as separate processes would).
    outboxes = [SqlOutbox(engine=sql_url) for _ in range(4)]
    outboxes[0].enqueue([item(f"n{index:03d}", float(index)) for index in range(120)])
    claims: list[list[str]] = [[] for _ in outboxes]
    barrier = threading.Barrier(len(outboxes))
    errors: list[BaseException] = []

    def work(outbox: Outbox, claimed: list[str]) -> None:
        try:
            barrier.wait()
            while batch := outbox.claim(500.0, limit=7, lease=60.0):
                claimed += [entry.key for entry in batch]
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(outbox, claimed))
        for outbox, claimed in zip(outboxes, claims, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = [key for claimed in claims for key in claimed]
    assert sorted(every) == [f"n{index:03d}" for index in range(120)]  # no item twice, none lost
    for claimed in claims:
        assert claimed == sorted(claimed)  # each worker takes the oldest due items first
    assert outboxes[0].claim(559.0, limit=10, lease=60.0) == []  # still leased
    assert len(outboxes[1].claim(560.0, limit=200, lease=60.0)) == 120  # lease over
    for outbox in outboxes:
        outbox.close()
