"""Status messages stamped beyond the service's clock are counted rejections, like samples.

A gateway that stamps microseconds (or whose clock is years off) would otherwise hand the episode
engine a "since" no calendar holds (year 57,868): rendering that alert raised, and its delivery,
left due, stopped the scheduler's every pass, other patients' alerts included. Real Mosquitto.
"""

from __future__ import annotations

from pathlib import Path

from flarewatch import topics
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import DeviceStatus, GatewayStatus, LinkState, encode
from flarewatch.settings import MqttSettings
from service.ingest import IngestService
from service.processing import IngestCycle, Processor
from service.stores.sqlite import SqliteStore
from tests.ingest_helpers import RawPublisher, now_ms, wait_for

DAY_MS = 86_400_000


class Statuses(Processor):
    """Records the status messages the processing hook is given."""

    def __init__(self) -> None:
        self.devices: list[DeviceStatus] = []
        self.gateways: list[GatewayStatus] = []

    def process(self, cycle: IngestCycle) -> None:
        self.devices.extend(cycle.device_statuses)
        self.gateways.extend(cycle.gateway_statuses)


def test_statuses_stamped_in_the_future_are_rejected_old_ones_kept(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    seen = Statuses()
    ingest = IngestService(
        SqliteStore(tmp_path / "samples.sqlite3"), MqttSettings(url=mosquitto.url), processor=seen
    )
    ingest.start()
    raw = RawPublisher(mosquitto.url)
    try:
        assert ingest.wait_ready(15)
        now = now_ms()

        def device(device_id: str, time_ms: int) -> None:
            status = DeviceStatus(
                patient_id="p1", device_id=device_id, time_ms=time_ms, state=LinkState.OFFLINE
            )
            raw.publish(topics.device_status_topic("p1", device_id), encode(status))

        def gateway(gateway_id: str, time_ms: int | None) -> None:
            status = GatewayStatus(gateway_id=gateway_id, state=LinkState.OFFLINE, time_ms=time_ms)
            raw.publish(topics.gateway_status_topic(gateway_id), encode(status))

        device("d-micro", now * 1000)  # microseconds
        device("d-ahead", now + 10 * 60_000)  # 10 min ahead
        gateway("g-micro", now * 1000)
        device("d-old", now - 200 * DAY_MS)  # retained for long: still the latest word
        device("d-now", now)
        gateway("g-will", None)  # a Last Will carries no time
        gateway("g-now", now + 60_000)  # within the allowed skew
        wait_for(lambda: ingest.stats().unacked_messages == 0, 10, "every status handled")
        wait_for(lambda: len(seen.devices) + len(seen.gateways) >= 4, 10, "good statuses passed")

        assert dict(ingest.stats().rejected) == {"invalid": 3}
        assert sorted(s.device_id for s in seen.devices) == ["d-now", "d-old"]
        assert sorted(g.gateway_id for g in seen.gateways) == ["g-now", "g-will"]
    finally:
        raw.close()
        ingest.stop()
