"""Refused sign-ins per network address: a guesser trying many usernames waits.

The throttle's arithmetic by table, then through HTTP on the real server: past the maximum the
address waits (429, Retry-After) even with the right password, other addresses do not, and the
window slides.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.accounts.const import ADDRESS_FAILURES_MAX, ADDRESS_WINDOW_S
from service.accounts.throttle import WindowLimit
from tests.web_app_helpers import PASSWORD, RECEIVER, CareWorld, care_world


@pytest.mark.parametrize(
    ("failures_at", "now_s", "wait_s"),
    [
        ([], 0.0, 0.0),
        ([0.0, 1.0], 2.0, 0.0),  # under the maximum
        ([0.0, 1.0, 2.0], 3.0, 297.0),  # the maximum: until the oldest leaves the window
        ([0.0, 1.0, 2.0], 300.0, 0.0),  # the oldest has left
        ([0.0, 100.0, 200.0], 350.0, 0.0),
        ([0.0, 100.0, 200.0, 299.0], 310.0, 90.0),  # three left in the window
    ],
)
def test_an_address_waits_once_it_reaches_the_maximum(failures_at, now_s, wait_s):
    throttle = WindowLimit(max_failures=3, window_s=300.0)
    for at in failures_at:
        throttle.count("192.0.2.7", at)
    assert throttle.wait_s("192.0.2.7", now_s) == pytest.approx(wait_s)
    assert throttle.wait_s("198.51.100.1", now_s) == 0.0


def test_memory_is_bounded_the_oldest_address_forgotten_first():
    throttle = WindowLimit(max_failures=1, window_s=300.0, max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.count(address, 0.0)
    assert [throttle.wait_s(a, 1.0) > 0 for a in ("a", "b", "c")] == [False, True, True]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER) as built:
        yield built


def test_many_usernames_from_one_address_make_it_wait(world):
    client = world.client()
    for i in range(ADDRESS_FAILURES_MAX):  # a different username each time: no account locks
        answer = client.post("/app/login", data={"username": f"guess{i}", "password": "x" * 12})
        assert answer.status_code == 401
    waiting = client.post("/app/login", data={"username": "ann", "password": PASSWORD})
    assert waiting.status_code == 429 and "Too many refused sign-ins" in waiting.text
    assert int(waiting.headers["retry-after"]) == pytest.approx(ADDRESS_WINDOW_S, abs=2)
    assert "set-cookie" not in waiting.headers
    world.clock.advance(ADDRESS_WINDOW_S)
    world.signed_in("ann")  # the window slid: the right password works again
