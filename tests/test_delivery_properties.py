"""The live service raises what a clean replay raises, whatever the delivery does (issue 4).

One code path for live use and offline evaluation: the detection path of the service (the
ingest's validation and duplicate filter, the sample store, the processing hook that lines up
a patient's devices, the detector bank, the episode engine) must hand the episode engine the
alarms (time, kind, severity) that ``flarewatch detect`` writes for the same recording, fed in
order from an empty state, and so open the same episodes. Hypothesis draws how the delivery
goes, within what the protocol (docs/protocol.md, docs/ingest.md) allows:

* the recording: a real stress-predict session with an injected surge or flush, sampled every
  second or at irregular 1-15 s, with silences;
* one band, or a heart-rate strap and a thermometer of one patient (at the same instants or not),
  registered, or never registered and announced online by their gateway before their data;
* the gateway's rounds and how each device's part is cut into messages, each message late by up
  to the alignment window (``ALIGN_HOLD_S``) after its round, so the devices interleave in any
  order; messages delivered again (at-least-once); messages arriving while the ingest worker is
  busy taken in one cycle; the processing hook run every second in between, as the ingest does;
* a clean restart of the service between two cycles (detector checkpoint saved and restored,
  duplicate filter seeded from the store).

"No data" is about what arrives: a gateway that holds its data for 5 min makes the live service
say it where the recording has no silence. So the exact comparison keeps every delay under a
minute and a half; a slow gateway (rounds of minutes, an outbox 15 min late) must raise the
same flush and anaphylaxis alarms and must not hide a silence the recording has.
What the protocol drops (a redelivery, a sample older than what the detector folded in) must be
counted. Real parts only: SQLite sample store and service database in a temporary folder, the
released detector bank with its confirmer. A modest, fixed number of examples, derandomized
and without an example database, so a run is fast and the same every time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from flarewatch.payloads import Sample
from models.alarm import AlarmKind
from tests.delivery_helpers import (
    EXAMPLES,
    Delivery,
    Devices,
    Event,
    Sampling,
    World,
    any_devices,
    check,
    deliveries,
    describe,
    events,
    in_time_order,
    in_turn,
    reference,
    reference_episodes,
    resends,
    resent_samples,
    samplings,
    serve,
    silences,
    two_devices,
)

# -- properties ---------------------------------------------------------------------------------


@EXAMPLES
@given(sampling=samplings, devices=any_devices, delivery=deliveries(), cut_seed=st.integers(0, 9))
def test_cut_and_interleaved_batches_raise_the_replays_alarms_and_episodes(
    delivery_world: World, sampling: Sampling, devices: Devices, delivery: Delivery, cut_seed: int
) -> None:
    split = devices.split(sampling.samples())
    expected = reference(in_time_order(split))
    served = serve(delivery_world, split, delivery, cut_seed, registered=devices.registered)
    check(served, expected)
    assert served.skipped_by_detector == 0
    assert served.episodes == reference_episodes(delivery_world, expected)


@EXAMPLES
@given(
    sampling=samplings,
    devices=any_devices,
    delivery=deliveries(resend=resends()),
)
def test_redelivered_batches_change_no_alarm_and_are_counted(
    delivery_world: World, sampling: Sampling, devices: Devices, delivery: Delivery
) -> None:
    split = devices.split(sampling.samples())
    expected = reference(in_time_order(split))
    served = serve(delivery_world, split, delivery, registered=devices.registered)
    check(served, expected)
    assert served.duplicates == resent_samples(split, delivery)
    assert served.skipped_by_detector == 0


@EXAMPLES
@given(
    sampling=samplings,
    devices=any_devices,
    delivery=deliveries(restart_at=st.floats(0.02, 0.98), resend=resends(max_size=3)),
    cut_seed=st.integers(0, 9),
)
def test_a_restart_in_the_middle_changes_no_alarm(
    delivery_world: World, sampling: Sampling, devices: Devices, delivery: Delivery, cut_seed: int
) -> None:
    """A clean stop and start: checkpoint saved and restored, duplicate filter seeded from the
    store (redeliveries from before the restart are dropped after it too)."""
    split = devices.split(sampling.samples())
    expected = reference(in_time_order(split))
    served = serve(delivery_world, split, delivery, cut_seed, registered=devices.registered)
    check(served, expected)
    assert served.skipped_by_detector == 0
    assert served.duplicates == resent_samples(split, delivery, cut_seed)


def folded(calls: Sequence[Sequence[Sample]]) -> tuple[list[Sample], int]:
    """What the detector folds in of these calls, and how many readings it must skip.

    As ``DetectorBank.update`` does: a call's samples by time with readings of one millisecond
    merged, each one not newer than the newest folded in before skipped.
    """
    newest = -1
    kept: list[Sample] = []
    skipped = 0
    for call in calls:
        for sample in in_time_order({"call": call}):
            if sample.time_ms <= newest:
                skipped += 1
            else:
                newest = sample.time_ms
                kept.append(sample)
    return kept, skipped


def not_no_data(events_: Sequence[Event]) -> list[Event]:
    return [e for e in events_ if e[1] != "no_data"]


@EXAMPLES
@given(
    sampling=st.builds(
        Sampling,
        source=st.sampled_from(["surge", "flush"]),
        irregular_seed=st.none() | st.integers(0, 99),
        gaps=st.lists(
            st.tuples(st.integers(1, 45), st.sampled_from([120, 299, 301, 600, 900])),
            max_size=2,
        ).map(tuple),
    ),
    devices=any_devices,
    # a gateway that publishes every few minutes, or its outbox up to 15 min late; the service
    # restarted meanwhile, or not
    delivery=deliveries(
        round_s=in_turn(st.integers(1, 400)),
        latency_ms=st.integers(0, 900_000),
        restart_at=st.none() | st.floats(0.02, 0.98),
    ),
)
def test_a_slow_gateway_raises_the_replays_alarms_and_every_silence(
    delivery_world: World, sampling: Sampling, devices: Devices, delivery: Delivery
) -> None:
    """Late data raise "no data" live (nothing came), but never hide a silence of the data, a
    restart in the middle neither."""
    split = devices.split(sampling.samples())
    expected = reference(in_time_order(split))
    served = serve(delivery_world, split, delivery, registered=devices.registered)
    assert served.rejected == []
    assert not_no_data(served.events) == not_no_data(events(expected)), describe(served)
    raised = silences(served.alarms)
    onsets = {time_s for time_s, resolved in raised if not resolved}
    missed = [a.time_s for a in expected if a.kind is AlarmKind.NO_DATA and not a.resolved]
    assert set(missed) <= onsets, f"silences of the data never raised: {raised}"
    for (_, was_resolved), (_, resolved) in itertools.pairwise([(0.0, True), *raised]):
        assert resolved != was_resolved, f"'no data' raised or ended twice in a row: {raised}"


@EXAMPLES
@given(
    sampling=samplings,
    devices=two_devices,
    delivery=deliveries(
        late=st.lists(
            st.tuples(st.integers(0, 400), st.integers(6, 600)), min_size=1, max_size=3
        ).map(tuple)
    ),
)
def test_what_comes_too_late_is_counted_and_the_rest_raises_its_replays_alarms(
    delivery_world: World, sampling: Sampling, devices: Devices, delivery: Delivery
) -> None:
    """A device later than the alignment waits for: its older readings skipped, and counted."""
    split = devices.split(sampling.samples())
    served = serve(delivery_world, split, delivery, registered=devices.registered)
    assert served.rejected == []
    assert sum(map(len, served.scored)) == served.new_samples == sum(map(len, split.values()))
    kept, skipped = folded(served.scored)
    assert served.skipped_by_detector == skipped
    assert not_no_data(served.events) == not_no_data(events(reference(kept)))
