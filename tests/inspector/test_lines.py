"""Which lines are "new" and what changed in them: each line against its last known state, the
newest earlier event of the same order that carried it (not merely the previous event)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from tcwebhook.inspector.lines import Changes, Row, event_changes, timeline_changes
from tcwebhook.store import Store, StoredEvent
from tests.helpers.inspector import sample, store_body

ORDER_ID = "order-lines-rule"


def order(step: int, positions: tuple[str, ...], quantity: float = 120) -> dict[str, Any]:
    """The sample order carrying only the lines at ``positions`` (Tradecloud sends the lines a
    change touched); line 0001's first delivery has ``quantity``."""
    body = sample("order-event.json")
    body["meta"]["messageId"] = f"lines-rule-{step}"
    body["orderEvent"]["orderId"] = ORDER_ID
    lines = body["orderEvent"]["lines"]
    third = copy.deepcopy(lines[1])
    third["buyerLine"]["position"] = "0003"
    third["buyerLine"]["item"]["number"] = "P-30001"
    by_position = {line["buyerLine"]["position"]: line for line in (*lines, third)}
    by_position["0001"]["deliverySchedule"][0]["quantity"] = quantity
    body["orderEvent"]["lines"] = [by_position[position] for position in positions]
    return body


def stored(store: Store, *bodies: dict[str, Any]) -> list[StoredEvent]:
    return [store.get_event(store_body(store, body)) for body in bodies]


def rows(changes: Changes | None) -> dict[str, Row]:
    assert changes is not None
    return {row.key: row for row in changes.lines.rows}


def newest_first(events: list[StoredEvent]) -> list[StoredEvent]:
    return list(reversed(events))


def test_a_line_carried_before_the_previous_event_is_not_new(store: Store) -> None:
    *earlier, event = stored(
        store,
        order(1, ("0001", "0002", "0003")),
        order(2, ("0001", "0003")),
        order(3, ("0001", "0002")),
        order(4, ("0001",)),
        order(5, ("0001", "0002", "0003")),
    )
    shown = rows(event_changes(event, newest_first(earlier)))
    assert [row.new for row in shown.values()] == [False, False, False]
    assert all(not row.before for row in shown.values())  # each as it was last known


def test_a_line_no_earlier_event_carried_is_new(store: Store) -> None:
    *earlier, event = stored(
        store, order(1, ("0001",)), order(2, ("0001", "0002")), order(3, ("0001", "0003"))
    )
    shown = rows(event_changes(event, newest_first(earlier)))
    assert shown["0003"].new and not shown["0001"].new


def test_a_line_is_compared_with_its_newest_earlier_state(store: Store) -> None:
    *earlier, event = stored(
        store,
        order(1, ("0001", "0003"), quantity=100),  # read too: 0003 is only here
        order(2, ("0001", "0002"), quantity=200),  # the last state of 0001
        order(3, ("0002",)),
        order(4, ("0001", "0002", "0003"), quantity=200),
    )
    shown = rows(event_changes(event, newest_first(earlier)))
    assert shown["0001"].before == {} and not shown["0001"].new
    *earlier, changed = [*earlier, event, *stored(store, order(5, ("0001",), quantity=300))]
    shown = rows(event_changes(changed, newest_first(earlier)))
    assert "200" in shown["0001"].before["quantities"]
    assert "300" in shown["0001"].cells["quantities"]


def test_the_first_event_has_nothing_new(store: Store) -> None:
    [event] = stored(store, order(1, ("0001", "0002")))
    changes = event_changes(event, [])
    assert changes is not None and changes.compared_with is None
    assert not any(row.new or row.before for row in rows(changes).values())


def test_earlier_events_are_read_only_until_every_line_is_known(store: Store) -> None:
    events = stored(
        store,
        order(1, ("0003",)),
        order(2, ("0001",)),
        order(3, ("0002",)),
        order(4, ("0001", "0002")),
        order(5, ("0001", "0002")),
    )
    read: list[int] = []

    def lazily(earlier: list[StoredEvent]) -> Iterator[StoredEvent]:
        for event in earlier:
            read.append(event.id)
            yield event

    event_changes(events[-1], lazily(newest_first(events[:-1])))
    assert read == [events[3].id]  # the previous event carried both lines
    *earlier, with_third = [*events, *stored(store, order(6, ("0001", "0003")))]
    read.clear()
    shown = rows(event_changes(with_third, lazily(newest_first(earlier))))
    assert read == [event.id for event in newest_first(earlier)]  # 0003: back to the first
    assert not shown["0003"].new


def test_the_timeline_follows_the_same_rule(store: Store) -> None:
    events = stored(
        store,
        order(1, ("0001",)),
        order(2, ("0001", "0002")),
        order(3, ("0001",)),
        order(4, ("0001", "0002")),
    )
    steps = timeline_changes(events)
    new = [sorted(key for key, row in rows(step).items() if row.new) for step in steps]
    assert new == [[], ["0002"], [], []]
    assert steps[3] is not None and steps[3].compared_with == f"event #{events[2].id}"
