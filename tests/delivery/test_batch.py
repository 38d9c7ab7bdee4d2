"""An ordered directory sink hands on a claimed batch at once, without weakening a promise:
done only once durable, the first failure holds back the later events, nothing left half-way."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tcwebhook import samples
from tcwebhook.config import RetrySettings
from tcwebhook.delivery.sinks import file_name
from tcwebhook.delivery.worker import BATCH_SINK_CLAIM, DeliveryWorker
from tcwebhook.store import Store
from tests.helpers.outbox import make_settings, open_for, sink, store_body, with_message_id

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on both backends

ORDER_ISSUED = samples.get_sample("order-issued").body
# A failure waits long enough that one drain never tries it again.
SLOW_RETRY = RetrySettings(max_attempts=5, base_delay=60, max_delay=60)


def store_events(store: Store, settings: object, count: int) -> list[int]:
    return [
        store_body(store, settings, with_message_id(ORDER_ISSUED, f"m{index}"))  # type: ignore[arg-type]
        for index in range(count)
    ]


def states(store: Store, ids: list[int]) -> list[tuple[str, int]]:
    return [(task.state, task.attempts) for e in store.get_events(ids) for task in e.tasks]


def test_get_events_reads_a_batch_in_id_order_with_tasks(tmp_path: Path, stores: list) -> None:
    settings = make_settings(tmp_path, sink("files", "directory", path=tmp_path / "out"))
    store = open_for(settings, stores)
    ids = store_events(store, settings, 3)
    events = store.get_events([ids[2], 10**12, ids[0], 0, -1, 2**70])
    assert [event.id for event in events] == [ids[0], ids[2]]  # unknown ids left out
    assert events[0] == store.get_event(ids[0])  # the same record, tasks included
    assert [task.target for task in events[1].tasks] == ["files"]
    assert store.get_events([]) == []
    many = store_events(store, settings, 600)  # more than one query's worth of parameters
    assert [event.id for event in store.get_events(many[::-1])] == many


async def test_a_backlog_is_written_in_order_in_batches(tmp_path: Path, stores: list) -> None:
    outbox = tmp_path / "out"
    settings = make_settings(tmp_path, sink("files", "directory", path=outbox))
    store = open_for(settings, stores)
    count = BATCH_SINK_CLAIM * 2 + 5  # more than one claim
    ids = store_events(store, settings, count)
    assert await DeliveryWorker(store, settings).drain() == count
    names = sorted(path.name for path in outbox.iterdir())
    assert names == [file_name(event) for event in store.get_events(ids)]
    assert [orjson.loads((outbox / name).read_bytes())["meta"]["messageId"] for name in names] == [
        f"m{index}" for index in range(count)
    ]
    assert set(states(store, ids)) == {("done", 1)}


@pytest.mark.parametrize("blocked", ["temporary", "final"])
async def test_the_first_file_that_fails_holds_back_the_rest_of_its_batch(
    tmp_path: Path, stores: list, blocked: str
) -> None:
    """A directory where the third file (or its temporary file) must go: the first two are
    done, the third failed, the rest not attempted and no temporary file left behind."""
    outbox = tmp_path / "out"
    outbox.mkdir()
    settings = make_settings(tmp_path, sink("files", "directory", path=outbox, retry=SLOW_RETRY))
    store = open_for(settings, stores)
    ids = store_events(store, settings, 6)
    third = file_name(store.get_event(ids[2]))
    obstacle = outbox / (f".{third}.tmp" if blocked == "temporary" else third)
    obstacle.mkdir()

    assert await DeliveryWorker(store, settings).drain() == 3
    assert states(store, ids) == [("done", 1)] * 2 + [("failed", 1)] + [("pending", 0)] * 3
    error = store.get_event(ids[2]).tasks[0].last_error or ""
    assert error.startswith(f"cannot write to {outbox}: ")
    written = sorted(path.name for path in outbox.iterdir() if path != obstacle)
    assert written == [file_name(e) for e in store.get_events(ids[:2])]  # nothing later, no .tmp

    obstacle.rmdir()
    store.requeue_tasks(event_id=ids[2])
    assert await DeliveryWorker(store, settings).drain() == 4
    assert [state for state, _ in states(store, ids)] == ["done"] * 6
    assert sorted(path.name for path in outbox.iterdir()) == sorted(
        file_name(e) for e in store.get_events(ids)
    )


async def test_a_batch_whose_directory_cannot_be_made_fails_at_its_head(
    tmp_path: Path, stores: list
) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    settings = make_settings(tmp_path, sink("files", "directory", path=target, retry=SLOW_RETRY))
    store = open_for(settings, stores)
    ids = store_events(store, settings, 4)
    assert await DeliveryWorker(store, settings).drain() == 1
    assert states(store, ids) == [("failed", 1)] + [("pending", 0)] * 3


async def test_an_event_gone_before_its_delivery_fails_there(tmp_path: Path, stores: list) -> None:
    """Deleted between claim and read (a forced purge): the events before it are written, its
    task fails saying why, the later ones go back."""
    outbox = tmp_path / "out"
    settings = make_settings(tmp_path, sink("files", "directory", path=outbox, retry=SLOW_RETRY))
    store = open_for(settings, stores)
    ids = store_events(store, settings, 3)
    worker = DeliveryWorker(store, settings)
    batch = store.claim_tasks("files", 10, 60, True, worker.claimant)
    found = [event for event in store.get_events(ids) if event.id != ids[1]]
    outcomes, released = await worker._attempt_in_order(worker.sinks[-1], batch, found)
    assert [(o.task.event_id, o.state) for o in outcomes] == [(ids[0], "done"), (ids[1], "failed")]
    assert outcomes[1].error == f"event {ids[1]} is no longer stored"
    assert released == [batch[2].id]
    assert [path.name for path in outbox.iterdir()] == [file_name(found[0])]
