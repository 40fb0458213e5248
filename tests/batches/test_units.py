"""Fast checks of the pure parts: rate limiter, seal digest, comparison, errors of a sym push."""

from __future__ import annotations

import pytest

from station.domain.enrollments import comparable
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation
from station.domain.manifest_signing import seal_digest
from station.domain.pushes import Conflict
from station.services.ratelimit import SAFETY, RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_never_allows_more_than_the_limit_in_any_window() -> None:
    fake = FakeTime()
    limiter = RateLimiter(5, time_scale=60.0, monotonic=fake.monotonic, sleep=fake.sleep)
    sent, answered = [], []
    for _ in range(23):
        limiter.acquire()
        sent.append(fake.now)
        fake.now += 0.2  # the round trip: DPS received it somewhere in here
        limiter.complete()
        answered.append(fake.now)
    # the 6th call after any call is sent a whole window after that call was answered
    for i in range(len(sent) - 5):
        assert sent[i + 5] >= answered[i] + 1.0 * SAFETY
    assert fake.slept and limiter.waited_s == pytest.approx(sum(fake.slept))
    unlimited = RateLimiter(0, monotonic=fake.monotonic, sleep=fake.sleep)
    before = len(fake.slept)
    for _ in range(100):
        unlimited.acquire()
    assert len(fake.slept) == before
    with pytest.raises(ValidationError):
        RateLimiter(-1, monotonic=fake.monotonic, sleep=fake.sleep)


def test_seal_digest_depends_on_every_entry_and_the_order() -> None:
    entries = [("a", "1" * 64), ("b", "2" * 64)]
    digest = seal_digest(entries)
    assert digest != seal_digest(entries[::-1])
    assert digest != seal_digest([("a", "1" * 64), ("b", "3" * 64)])
    assert digest != seal_digest(entries[:1])


def test_comparable_reduces_dps_answers_to_what_was_sent() -> None:
    sent = {
        "registrationId": "d1",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": "EK"}},
        "provisioningStatus": "enabled",
        "initialTwin": {"tags": {"b": "1"}, "properties": {"desired": {}}},
    }
    answered = {
        **sent,
        "etag": "x",
        "createdDateTimeUtc": "t",
        "registrationState": {"status": "unassigned"},
    }
    assert comparable(answered) == comparable(sent)
    changed = {**answered, "provisioningStatus": "disabled"}
    conflict = Conflict("d1", comparable(sent), comparable(changed))
    assert conflict.differences() == ["provisioningStatus"]


def test_pushing_a_group_enrolled_batch_is_refused(cloud, fill_batch) -> None:
    fill_batch(cloud, "WO-G", 2, product="lab-sym", attestation=Attestation.SYMMETRIC_KEY)
    cloud.batches().seal("WO-G", operator="boss")
    with pytest.raises(ValidationError, match="enroll through their enrollment group"):
        cloud.batches().push("WO-G", operator="boss")


def test_record_payload_from_stored_bytes_is_byte_identical(make_manifest) -> None:
    from station.domain.manifest_signing import record_payload, record_payload_from_canonical

    manifest = make_manifest("SNü1", registration_id="dev-1", attestation=Attestation.TPM)
    for seq, prev in ((0, ""), (7, 'dev-"x"')):
        assert record_payload_from_canonical(
            seq, prev, "WO-ü", manifest.canonical()
        ) == record_payload(seq, prev, "WO-ü", manifest.to_dict())
