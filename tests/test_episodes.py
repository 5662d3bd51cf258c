"""Episode engine and processing hook: alarms → episodes → alerts, signal states kept apart.

Alerts are delivered for real (Apprise → loopback HTTP receiver); time is a fake clock.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import select

from flarewatch.payloads import DeviceStatus, GatewayStatus, LinkState, Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from models.bank import DetectorBank
from models.detector import PatientDetector
from service.alerts.errors import CancelNotAllowedError
from service.alerts.tokens import TokenAction
from service.db import Alert, AlertState, Episode, Patient, SignalState
from service.db import session as db_session
from service.db.care_teams import PolicyUpdate, add_device, get_patient, set_policy
from service.db.models import AuditEvent
from service.episodes import AlertingProcessor, EpisodeEngine
from service.episodes.signals import SignalKind
from service.processing import IngestCycle
from tests.alerting_helpers import FakeClock, build_stack, register_team
from tests.test_detector_baselines_and_vetoes import walk_then_rest
from tests.test_models_detector import make_samples, with_motion
from tests.test_off_wrist import band

T0 = 1_764_000_000.0


@pytest.fixture
def setup(service_db_url, http):
    clock = FakeClock(T0)
    stack = build_stack(service_db_url, clock)
    register_team(
        stack.db,
        "p1",
        [("ann", [http.url("ann")]), ("bob", [http.url("bob")])],
        wearer=[http.url("wearer")],
    )
    yield stack, clock, EpisodeEngine(stack.manager)
    stack.close()


def alarm(kind: AlarmKind, severity: Severity = Severity.WARNING, t: float = T0, **kw) -> Alarm:
    return Alarm("p1", t, kind, severity, "fw-test-1", evidence={"hr_rise_bpm": 25.0}, **kw)


def step(stack, clock, seconds: float) -> None:
    clock.advance(seconds)
    stack.scheduler.run_until_idle()


def episodes(stack) -> list[Episode]:
    with stack.db.session() as session:
        return list(session.scalars(select(Episode).order_by(Episode.id)))


def alerts(stack) -> list[Alert]:
    with stack.db.session() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_warning_cancelled_by_wearer_in_window_notifies_nobody(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.FLUSH), {"heart_rate_bpm": 96.0})
    stack.scheduler.run_until_idle()
    check = inbox.to("/wearer")
    assert len(check) == 1 and "I'm OK" in check[0].body
    token = re.search(r"/im-ok/(\S+)", check[0].body).group(1)
    step(stack, clock, 20)
    stack.manager.redeem(token, TokenAction.CANCEL, via="test")
    for _ in range(5):
        step(stack, clock, 60)
    assert inbox.to("/ann") == [] and inbox.to("/bob") == []
    assert alerts(stack)[0].state == AlertState.CANCELLED


def test_uncancelled_warning_reaches_caregiver_after_window_and_cannot_be_cancelled_then(
    setup, inbox
):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.FLUSH))
    step(stack, clock, 59)
    assert inbox.to("/ann") == []
    step(stack, clock, 1)
    assert len(inbox.to("/ann")) == 1
    with pytest.raises(CancelNotAllowedError):
        stack.manager.cancel(alerts(stack)[0].id, via="test")


def test_critical_has_no_cancel_window(setup, inbox):
    stack, _clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL), {"heart_rate_bpm": 140.0})
    stack.scheduler.run_until_idle()
    [told] = inbox.to("/ann")
    assert "heart rate 140 beats a minute" in told.body
    assert inbox.to("/wearer") == []
    with pytest.raises(CancelNotAllowedError):
        stack.manager.cancel(alerts(stack)[0].id, via="test")


def test_one_episode_per_event_escalates_then_closes(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.FLUSH))
    engine.on_alarm(alarm(AlarmKind.FLUSH, t=T0 + 10))  # continuing: no new episode
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, t=T0 + 30))
    stack.scheduler.run_until_idle()
    [episode] = episodes(stack)
    assert (episode.kind, episode.severity, episode.model_version) == (
        "anaphylaxis",
        "critical",
        "fw-test-1",
    )
    assert len(episode.summary["alarms"]) == 3 and episode.summary["peak"]["hr_rise_bpm"] == 25
    [only] = alerts(stack)
    assert only.severity == "critical" and only.state == AlertState.ACTIVE
    assert len(inbox.to("/ann")) == 1  # critical skipped the window: caregiver told at once
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, t=T0 + 600, resolved=True))
    step(stack, clock, 1)
    [episode] = episodes(stack)
    assert episode.state == "closed" and episode.closed_s == T0 + 600
    assert alerts(stack)[0].state == AlertState.RESOLVED
    assert inbox.to("/ann")[-1].title.startswith("All clear")
    engine.on_alarm(alarm(AlarmKind.FLUSH, t=T0 + 900))
    assert len(episodes(stack)) == 2


def test_no_data_is_a_signal_alert_never_an_episode(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.NO_DATA))
    stack.scheduler.run_until_idle()
    # the wearer hears of it at once; caregivers only after the signal window (10 min)
    [check] = inbox.to("/wearer")
    assert check.title.startswith("Check your band") and "I took it off: " in check.body
    step(stack, clock, 599)
    assert episodes(stack) == [] and inbox.to("/ann") == []
    [signal_alert] = alerts(stack)
    assert signal_alert.kind == "no_data" and signal_alert.episode_id is None
    step(stack, clock, 1)
    [notice] = inbox.to("/ann")
    assert "no data" in notice.title and "Alex was asked to check the band" in notice.body
    engine.on_alarm(alarm(AlarmKind.NO_DATA, resolved=True, t=T0 + 700))
    assert alerts(stack)[0].state == AlertState.RESOLVED


def test_band_taken_off_on_purpose_reaches_no_caregiver(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.NO_CONTACT))
    stack.scheduler.run_until_idle()
    token = re.search(r"/im-ok/(\S+)", inbox.to("/wearer")[0].body).group(1)
    step(stack, clock, 240)
    stack.manager.redeem(token, TokenAction.CANCEL, via="test")
    for _ in range(30):  # the band charges for half an hour
        step(stack, clock, 60)
    assert inbox.to("/ann") == [] and inbox.to("/bob") == []
    assert alerts(stack)[0].state == AlertState.CANCELLED
    engine.on_alarm(alarm(AlarmKind.NO_CONTACT, resolved=True, t=T0 + 2040))
    engine.on_alarm(alarm(AlarmKind.NO_CONTACT, t=T0 + 9000))  # off again: asked again
    stack.scheduler.run_until_idle()
    assert len(inbox.to("/wearer")) == 2 and len(alerts(stack)) == 2


def test_a_patient_without_a_signal_window_hears_of_silence_at_once(setup, inbox):
    stack, _clock, engine = setup
    with stack.db.session() as session:
        set_policy(get_patient(session, "p1"), PolicyUpdate(signal_window_s=0))
    engine.on_alarm(alarm(AlarmKind.NO_DATA))
    stack.scheduler.run_until_idle()
    [notice] = inbox.to("/ann")
    assert inbox.to("/wearer") == [] and "no data" in notice.title
    assert "asked to check the band" not in notice.body  # nobody asked the wearer


def test_short_outage_within_window_wakes_nobody(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.NO_CONTACT))
    step(stack, clock, 30)
    engine.on_alarm(alarm(AlarmKind.NO_CONTACT, resolved=True, t=T0 + 30))
    step(stack, clock, 120)
    assert inbox.to("/ann") == []


def test_signal_lost_during_open_episode_escalates_it(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.FLUSH))
    step(stack, clock, 60)
    assert "WARNING" in inbox.to("/ann")[0].title
    engine.on_alarm(alarm(AlarmKind.NO_DATA, t=T0 + 70))
    stack.scheduler.run_until_idle()
    [episode] = episodes(stack)
    assert episode.signal_lost and episode.severity == "critical"
    assert len(alerts(stack)) == 1, "the lost signal escalates the episode, no separate alert"
    worse = inbox.to("/ann")[-1]
    assert worse.title.startswith("WORSE") and "LOST" in worse.body


def batch(seq: int, t_ms: int, device: str = "band1", gateway: str = "gw1") -> SampleBatch:
    return SampleBatch(
        patient_id="p1",
        device_id=device,
        gateway_id=gateway,
        samples=(Sample(seq=seq, time_ms=t_ms, heart_rate_bpm=70.0, battery_percent=80),),
    )


class NoAlarms:
    """A bank whose detectors see nothing wrong (the gateway test is about signal states)."""

    def update(self, items):
        return []

    def tick(self, now_s):
        return []


class ScriptedAlarms(NoAlarms):
    """Detectors that raise the alarms put in ``next`` on their next update."""

    def __init__(self) -> None:
        self.next: list[Alarm] = []

    def update(self, items):
        raised, self.next = self.next, []
        return raised


def test_an_alarm_the_database_could_not_take_is_kept_and_delivered_later(
    service_db_url, http, inbox, monkeypatch
):
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.3)  # wait 0.3 s for the lock
    clock = FakeClock(T0)
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")])], wearer=[http.url("wearer")])
    bank = ScriptedAlarms()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))
    now_ms = int(T0 * 1000)
    holder = stack.db.engine.connect()
    held = holder.begin()  # another writer holds the database's write lock past the wait
    bank.next = [alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL)]
    processor.process(IngestCycle(now_ms, batches=[batch(1, now_ms)]))
    assert processor.undelivered == 2  # the onset, and the vitals behind it
    assert processor.deliveries_failed == 1 and processor.deliveries_dropped == 0
    held.rollback()
    holder.close()
    assert episodes(stack) == [], "nothing was stored while the lock was held"
    processor.process(IngestCycle(now_ms + 1000))  # the next cycle, a tick without data
    assert processor.undelivered == 0
    [episode] = episodes(stack)
    assert (episode.kind, episode.severity) == ("anaphylaxis", "critical")
    step(stack, clock, 1)
    assert inbox.wait_for("/ann", 1)[0].title.startswith("CRITICAL")
    stack.close()


def test_silent_gateway_last_will_gives_no_data_alert_not_episode(setup, inbox):
    stack, clock, engine = setup
    processor = AlertingProcessor(NoAlarms(), engine)
    now_ms = int(T0 * 1000)
    processor.process(IngestCycle(now_ms, batches=[batch(1, now_ms)]))
    will = GatewayStatus(gateway_id="gw1", state=LinkState.OFFLINE)  # the broker's Last Will
    processor.process(IngestCycle(now_ms + 1000, gateway_statuses=[will]))
    processor.process(IngestCycle(now_ms + 2000, gateway_statuses=[will]))  # retained re-delivery
    step(stack, clock, 601)  # the wearer's signal window
    assert episodes(stack) == []
    [no_data] = alerts(stack)
    assert (no_data.kind, no_data.signal) == ("no_data", "gateway_offline")
    assert len(inbox.to("/ann")) == 1
    with stack.db.session() as session:
        state = session.get_one(SignalState, ("p1", "gateway_offline"))
        assert state.active
    online = GatewayStatus(gateway_id="gw1", state=LinkState.ONLINE, time_ms=now_ms + 90_000)
    processor.process(IngestCycle(now_ms + 90_000, gateway_statuses=[online]))
    assert alerts(stack)[0].state == AlertState.RESOLVED


def test_a_signal_restored_by_readings_from_before_it_was_lost_is_restored_then(setup):
    """A gateway minutes behind: "no data" raised for 10:05 (data time), then the readings it
    had come, the first from 10:02. The state said restored at 10:02, before it was lost."""
    stack, _, engine = setup
    engine.on_signal("p1", SignalKind.NO_DATA, True, T0 + 300)
    engine.on_signal("p1", SignalKind.NO_DATA, False, T0 + 120)
    with stack.db.session() as session:
        state = session.get_one(SignalState, ("p1", "no_data"))
        assert (state.active, state.since_s) == (False, T0 + 300)
    engine.on_signal("p1", SignalKind.NO_DATA, True, T0 + 900)
    engine.on_signal("p1", SignalKind.NO_DATA, False, T0 + 960)
    with stack.db.session() as session:
        state = session.get_one(SignalState, ("p1", "no_data"))
        assert (state.active, state.since_s) == (False, T0 + 960)


def test_device_offline_and_low_battery_are_signal_states(setup, inbox):
    stack, clock, engine = setup
    processor = AlertingProcessor(NoAlarms(), engine)
    now_ms = int(T0 * 1000)
    low = DeviceStatus(
        patient_id="p1",
        device_id="band1",
        time_ms=now_ms,
        state=LinkState.ONLINE,
        battery_percent=9,
    )
    processor.process(IngestCycle(now_ms, device_statuses=[low]))
    step(stack, clock, 120)
    assert [a.kind for a in alerts(stack)] == ["battery_low"]  # the wearer's notice, over at once
    assert inbox.to("/ann") == [] and len(inbox.to("/wearer")) == 1  # no caregiver is woken
    gone = DeviceStatus(
        patient_id="p1", device_id="band1", time_ms=now_ms + 1, state=LinkState.OFFLINE
    )
    processor.process(IngestCycle(now_ms + 1000, device_statuses=[gone]))
    step(stack, clock, 61)
    assert [a.kind for a in alerts(stack)] == ["battery_low", "no_data"] and episodes(stack) == []


def test_a_low_battery_tells_the_wearer_once_a_spell_and_nobody_else(setup, inbox):
    stack, clock, engine = setup
    with stack.db.session() as session:
        add_device(session, "p1", "band1")
    processor = AlertingProcessor(NoAlarms(), engine)

    def battery(percent: int) -> None:
        at_ms = int(clock() * 1000)
        status = DeviceStatus(
            patient_id="p1", device_id="band1", time_ms=at_ms, state=LinkState.ONLINE,
            battery_percent=percent,
        )  # fmt: skip
        processor.process(IngestCycle(at_ms, device_statuses=[status]))
        step(stack, clock, 60)

    battery(60)
    assert inbox.items == []
    battery(12)
    [told] = inbox.to("/wearer")
    assert told.title == "Charge your band - its battery is low (12 %)"
    assert "Charge it soon" in told.body and "Only you are told" in told.body
    for wavering in (16, 14, 21, 13):  # not charged yet: the same low spell
        battery(wavering)
    assert len(inbox.to("/wearer")) == 1
    battery(95)  # charged
    battery(9)
    assert [m.title for m in inbox.to("/wearer")][1] == (
        "Charge your band - its battery is low (9 %)"
    )
    assert inbox.to("/ann") == [] and inbox.to("/bob") == []
    with stack.db.session() as session:
        queued = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "battery_notice_queued")
        ).all()
        assert [e.detail["messages"] for e in queued] == [1, 1]


def test_a_low_battery_in_quiet_hours_is_told_when_they_end(setup, inbox):
    stack, clock, engine = setup  # T0 is 16:00 UTC
    with stack.db.session() as session:
        set_policy(get_patient(session, "p1"), PolicyUpdate(quiet_hours="15:00-17:00"))
    engine.on_signal("p1", SignalKind.BATTERY_LOW, True, clock())
    step(stack, clock, 3599)
    assert inbox.items == []
    step(stack, clock, 1)
    [told] = inbox.to("/wearer")
    assert told.title == "Charge your band - its battery is low"  # no band reported a level


def test_a_band_the_gateway_cannot_pair_with_is_told_as_the_wearers_to_mend(setup, inbox):
    stack, clock, engine = setup
    processor = AlertingProcessor(NoAlarms(), engine)
    now_ms = int(T0 * 1000)

    def status(state: LinkState, reason: str | None, at_ms: int) -> None:
        gone = DeviceStatus(
            patient_id="p1", device_id="band1", time_ms=at_ms, state=state, reason=reason
        )
        processor.process(IngestCycle(at_ms, device_statuses=[gone]))

    status(LinkState.OFFLINE, "link_lost", now_ms)  # walked away, then back and reset
    status(LinkState.OFFLINE, "pairing", now_ms + 5_000)  # still lost: now it will not pair
    step(stack, clock, 61)
    [check] = inbox.to("/wearer")
    assert "cannot pair with it" in check.body and "pairing mode" in check.body
    assert "plugged in" not in check.body
    for _ in range(10):
        step(stack, clock, 60)
    told = inbox.to("/ann")
    assert told and "The gateway cannot pair with" in told[0].body
    with stack.db.session() as session:
        state = session.get(SignalState, ("p1", str(SignalKind.DEVICE_OFFLINE)))
        assert state is not None and state.detail == "pairing"


def test_a_band_silent_for_another_reason_says_nothing_of_pairing(setup, inbox):
    stack, clock, engine = setup
    processor = AlertingProcessor(NoAlarms(), engine)
    now_ms = int(T0 * 1000)
    gone = DeviceStatus(
        patient_id="p1",
        device_id="band1",
        time_ms=now_ms,
        state=LinkState.OFFLINE,
        reason="link_lost",
    )
    processor.process(IngestCycle(now_ms, device_statuses=[gone]))
    step(stack, clock, 61)
    [check] = inbox.to("/wearer")
    assert "plugged in" in check.body and "pair" not in check.body


def test_unregistered_patient_is_watched_but_reaches_nobody(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(Alarm("stranger", T0, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test-1"))
    step(stack, clock, 300)
    [episode] = episodes(stack)
    assert episode.patient_id == "stranger" and inbox.items == []


def detect_and_deliver(stack, clock, engine, samples: list[Sample]) -> None:
    """Feed one patient's samples from the detectors to the caregivers, a batch a minute."""
    processor = AlertingProcessor(DetectorBank(PatientDetector()), engine)
    for i in range(0, len(samples), 12):  # one batch a minute, as a gateway sends them
        chunk = tuple(samples[i : i + 12])
        sent = SampleBatch(patient_id="p1", device_id="band1", gateway_id="gw1", samples=chunk)
        processor.process(IngestCycle(chunk[-1].time_ms, batches=[sent]))
    step(stack, clock, (samples[-1].time_ms / 1000 - T0) + 1)


@pytest.mark.parametrize("band_has_motion", [False, True])
def test_surge_message_says_when_the_band_cannot_rule_out_exercise(
    setup, inbox, band_has_motion: bool
):
    """Detector to caregiver: a band without steps or motion cannot tell walking from a surge."""
    stack, clock, engine = setup
    samples = make_samples(40, period_s=5.0, surge_at_min=25, surge_frac=0.5)
    if band_has_motion:
        samples = with_motion(samples, still_from_min=None)
    detect_and_deliver(stack, clock, engine, samples)
    [episode] = episodes(stack)
    assert episode.kind == "anaphylaxis"
    first = inbox.to("/ann")[0].body
    assert ("exercise cannot be ruled out" in first) is not band_has_motion


def test_surge_after_exercise_message_says_the_heart_did_not_slow_down(setup, inbox):
    """Detector to caregiver: the non-recovery path (exercise can trigger a reaction)."""
    stack, clock, engine = setup
    samples = walk_then_rest(heart_slows=False)
    detect_and_deliver(stack, clock, engine, samples)
    [episode] = episodes(stack)
    assert episode.kind == "anaphylaxis"
    assert "did not slow down once they stopped" in inbox.to("/ann")[0].body


def test_an_episode_closed_without_calming_down_is_no_all_clear(setup, inbox):
    stack, clock, engine = setup
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL))
    stack.scheduler.run_until_idle()
    evidence = {"episode_no": 1.0, "expired": 1.0}
    end = Alarm(
        "p1", T0 + 7200, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "fw-test-1", True, evidence
    )
    engine.on_alarm(end)
    step(stack, clock, 1)
    [episode] = episodes(stack)
    assert episode.state == "closed" and episode.summary["expired"] is True
    last = inbox.to("/ann")[-1]
    assert last.title.startswith("Closed, still raised") and "All clear" not in last.title
    assert "still raised" in last.body and "Check on them" in last.body


def test_band_off_in_quiet_hours_asks_the_wearer_when_they_end(setup, inbox):
    stack, clock, engine = setup  # T0 is 16:00 UTC
    with stack.db.session() as session:
        set_policy(get_patient(session, "p1"), PolicyUpdate(quiet_hours="15:00-17:00"))
    engine.on_alarm(alarm(AlarmKind.NO_DATA))
    step(stack, clock, 3599)
    assert inbox.items == []  # a band charging overnight wakes nobody
    step(stack, clock, 1)
    [check] = inbox.to("/wearer")
    assert check.title.startswith("Check your band")
    step(stack, clock, 599)
    assert inbox.to("/ann") == []  # the wearer's window runs from the end of the quiet hours
    step(stack, clock, 1)
    assert "no data" in inbox.to("/ann")[0].title


def test_band_back_before_quiet_hours_end_reaches_nobody(setup, inbox):
    stack, clock, engine = setup
    with stack.db.session() as session:
        set_policy(get_patient(session, "p1"), PolicyUpdate(quiet_hours="15:00-17:00"))
    engine.on_alarm(alarm(AlarmKind.NO_DATA))
    step(stack, clock, 1800)
    engine.on_alarm(alarm(AlarmKind.NO_DATA, resolved=True, t=T0 + 1800))
    for _ in range(10):
        step(stack, clock, 600)
    assert inbox.items == []
    assert alerts(stack)[0].state == AlertState.RESOLVED


def test_band_on_the_table_asks_the_wearer_and_opens_no_episode(setup, inbox):
    """Detector to wearer: an E4-like band taken off reports a rising heart rate from the table."""
    stack, clock, engine = setup
    rng = np.random.default_rng(7)
    samples = band(40, 0, rng, "worn") + band(15, 40, rng, "table")
    detect_and_deliver(stack, clock, engine, samples)
    assert episodes(stack) == []
    [check] = inbox.to("/wearer")
    assert check.title.startswith("Check your band") and "off the wrist" in check.body
    [notice] = inbox.to("/ann")  # unanswered for the signal window
    assert "skin contact" in notice.title and "WARNING" in notice.title


def test_a_signal_that_was_never_lost_registers_nobody(setup, inbox):
    """A band's retained "online" status, read again at every start, of an id nobody registered
    (an erased patient's) changes nothing: nothing was lost, so there is nobody to tell."""
    stack, _, engine = setup
    engine.on_signal("gone", SignalKind.DEVICE_OFFLINE, False, T0)
    with stack.db.session() as session:
        assert session.get(Patient, "gone") is None
    engine.on_signal("gone", SignalKind.DEVICE_OFFLINE, True, T0 + 1)  # lost: watched, registered
    with stack.db.session() as session:
        assert session.get(Patient, "gone") is not None
