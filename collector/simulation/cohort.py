"""A cohort of simulated patients generated together (one call per time range for all of them)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.errors import SimulationError
from collector.outbox import DeviceGroup
from collector.simulation.block import SampleBlock
from collector.simulation.episodes import EpisodeScript, EpisodeTruth
from collector.simulation.generator import PatientSimulator
from collector.simulation.profile import PatientProfile, random_profile


class Cohort:
    """``n_patients`` reproducible patients (``p1``…``pN``, devices ``pN-band``) from one seed.

    Patient *i*'s samples depend only on (seed, *i*, their episodes), not on the cohort size, so
    a test with 3 patients sees the same ``p1`` as a benchmark with 1000.
    """

    def __init__(
        self,
        n_patients: int,
        *,
        seed: int,
        band_on_ms: int,
        interval_ms: int = 1000,
        episodes: Sequence[EpisodeScript] = (),
        profiles: Sequence[PatientProfile] | None = None,
    ) -> None:
        if n_patients < 1:
            raise SimulationError("a cohort needs at least one patient")
        chosen = (
            list(profiles)
            if profiles is not None
            else [random_profile(seed, i) for i in range(n_patients)]
        )
        known = {p.patient_id for p in chosen}
        unknown = {e.patient_id for e in episodes} - known
        if unknown:
            raise SimulationError(f"episodes for unknown patients: {sorted(unknown)}")
        self.seed = seed
        self.interval_ms = interval_ms
        self.patients = [
            PatientSimulator(
                profile,
                seed=seed,
                band_on_ms=band_on_ms,
                interval_ms=interval_ms,
                episodes=episodes,
            )
            for profile in chosen
        ]

    @property
    def patient_ids(self) -> list[str]:
        """Ids of the patients, in cohort order."""
        return [p.profile.patient_id for p in self.patients]

    def generate(self, start_ms: int, end_ms: int) -> list[SampleBlock]:
        """One block per patient with the samples in ``[start_ms, end_ms)``."""
        return [p.generate(start_ms, end_ms) for p in self.patients]

    def device_groups(self, start_ms: int, end_ms: int) -> list[DeviceGroup]:
        """``(patient_id, device_id, readings)`` per patient, ready for ``submit_many``."""
        return [
            (block.patient_id, block.device_id, block.readings())
            for block in self.generate(start_ms, end_ms)
        ]

    def ground_truth(self) -> list[EpisodeTruth]:
        """Every scripted episode as it was realised, sorted by onset."""
        return sorted(
            (t for p in self.patients for t in p.ground_truth()), key=lambda t: t.onset_ms
        )
