"""Credentials of a server URL are starred out of error texts, which stay readable."""

from __future__ import annotations

import pytest

from flarewatch.localservers import free_port
from flarewatch.redaction import scrubbed
from service.errors import StoreError
from service.stores.influx import InfluxStore
from tests.test_store_contract import batch

SHORT = "http://u:e@db.example:8086"


@pytest.mark.parametrize(
    ("text", "url", "expected"),
    [
        # where the URL stands in the text, its user and password go, however short
        (
            f"cannot connect to {SHORT}/write",
            SHORT,
            "cannot connect to http://***@db.example:8086/write",
        ),
        # a short secret is starred only where it stands alone, not inside every word
        ("[Errno 111] Connection refused", SHORT, "[Errno 111] Connection refused"),
        ("password 'e' rejected for user u", SHORT, "password '***' rejected for user ***"),
        # a long one wherever it is
        (
            "auth S3cret-pw failed (S3cret-pw2 tried)",
            "http://flare:S3cret-pw@h",
            "auth *** failed (***2 tried)",
        ),
        # percent-encoded in the URL, plain in the text
        ("login ann:p@ss/word refused", "http://ann:p%40ss%2Fword@h", "login ***:*** refused"),
        ("user flare unknown", "http://flare@h:1", "user *** unknown"),
        ("nothing to hide", "http://h:1/x", "nothing to hide"),
    ],
)
def test_scrubbed(text: str, url: str, expected: str) -> None:
    assert scrubbed(text, url) == expected


def test_a_database_role_stays_readable_while_its_password_is_starred() -> None:
    url = "postgresql+psycopg://intruder:e@127.0.0.1:5432/flarewatch"
    text = 'role "intruder" does not exist (intruder:e@127.0.0.1, password e)'
    assert scrubbed(text, url, hide_user=False) == (
        'role "intruder" does not exist (intruder:***@127.0.0.1, password ***)'
    )


def test_an_influxdb_url_with_a_one_letter_password_keeps_the_error_readable() -> None:
    port = free_port()
    store = InfluxStore(f"http://u:e@127.0.0.1:{port}", timeout_s=0.5)
    with pytest.raises(StoreError) as caught:
        store.write([batch("p1", "d1", range(2))])
    store.close()
    message = str(caught.value)
    assert "Connection refused" in message and f"127.0.0.1:{port}" in message, message
    assert "u:e" not in message
