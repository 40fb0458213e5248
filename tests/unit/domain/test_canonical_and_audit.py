import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.domain.audit import GENESIS_HASH, EventDraft, chain, format_time, verify_chain
from station.domain.canonical import canonical_json
from station.domain.errors import ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


@given(json_values)
def test_canonical_json_is_independent_of_key_order(value) -> None:
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert canonical_json(reordered) == canonical_json(value)


@pytest.mark.parametrize("bad", [1.5, {"a": float("nan")}, {1: "x"}, {"a": object()}])
def test_canonical_json_refuses_non_canonical_values(bad) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"a": [1, {"b": 2.0}]}, "$.a[1].b"),
        ([None, [True, (1, 1e3)]], "$[1][1][1]"),
        ({"a": {"b": {3: "x"}}}, "$.a.b"),
        ({"a": b"bytes"}, "$.a"),
        ({"a": {1, 2}}, "$.a"),
    ],
)
def test_canonical_json_names_where_a_nested_bad_value_is(bad, path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        canonical_json(bad)
    assert caught.value.details["path"] == path


@given(json_values)
def test_canonical_json_accepts_json_values_in_tuples_and_str_subclasses(value) -> None:
    class Kind(StrEnum):
        TPM = "tpm"

    wrapped = {"kind": Kind.TPM, "values": (value, [value])}
    plain = {"kind": "tpm", "values": [value, [value]]}
    assert canonical_json(wrapped) == canonical_json(plain)


def _build_chain(n: int):
    events = []
    prev = None
    for i in range(n):
        prev = chain(
            EventDraft(
                kind="test.event", subject=f"s{i}", payload={"i": i}, operator="op", station="st"
            ),
            prev=prev,
            time=T0 + timedelta(seconds=i),
        )
        events.append(prev)
    return events


def test_chain_links_each_event_to_the_previous_one() -> None:
    events = _build_chain(3)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert len({e.hash for e in events}) == 3
    assert verify_chain(events) is None


def test_chain_times_are_utc_even_from_another_zone() -> None:
    event = chain(
        EventDraft(kind="k", subject="s"),
        prev=None,
        time=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    assert event.time == "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "other"), ("operator", "mallory"), ("payload_json", '{"i":99}'), ("time", "x")],
)
def test_editing_any_field_is_detected_at_that_event(field: str, value: str) -> None:
    events = _build_chain(5)
    events[2] = dataclasses.replace(events[2], **{field: value})
    problem = verify_chain(events)
    assert problem is not None
    assert problem.seq == 3


def test_deleting_an_event_is_detected_where_the_gap_is() -> None:
    events = _build_chain(5)
    del events[1]
    problem = verify_chain(events)
    assert problem is not None and problem.seq == 3
    assert "expected event 2" in problem.reason


def test_reordering_events_is_detected() -> None:
    events = _build_chain(4)
    events[1], events[2] = events[2], events[1]
    problem = verify_chain(events)
    assert problem is not None and problem.seq == 3


def test_rehashing_an_edited_event_still_breaks_the_next_link() -> None:
    events = _build_chain(4)
    forged = chain(
        EventDraft(kind="test.event", subject="forged", operator="op", station="st"),
        prev=events[0],
        time=T0,
    )
    events[1] = forged
    problem = verify_chain(events)
    assert problem is not None and problem.seq == 3
    assert "prev_hash" in problem.reason


def test_event_kind_and_payload_are_validated() -> None:
    with pytest.raises(ValidationError):
        EventDraft(kind="bad kind!", subject="s")
    with pytest.raises(ValidationError):
        EventDraft(kind="ok", subject="s", payload={"x": 1.0})


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
        ),
    )
)
def test_format_time_is_rfc3339_utc_with_microseconds_as_strftime_wrote_it(
    moment: datetime,
) -> None:
    # the text is hashed into the audit chain: it may never change for a given moment
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_time(moment) == expected


def test_format_time_refuses_a_naive_time() -> None:
    with pytest.raises(ValidationError):
        format_time(datetime(2026, 1, 1))
