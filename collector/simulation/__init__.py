"""Simulated wearables: physiologically plausible samples with scripted mast-cell episodes."""

from collector.simulation.block import SampleBlock
from collector.simulation.cohort import Cohort
from collector.simulation.episodes import EpisodeKind, EpisodeScript, EpisodeTruth, parse_episode
from collector.simulation.generator import PatientSimulator
from collector.simulation.profile import PatientProfile, random_profile

__all__ = [
    "Cohort",
    "EpisodeKind",
    "EpisodeScript",
    "EpisodeTruth",
    "PatientProfile",
    "PatientSimulator",
    "SampleBlock",
    "parse_episode",
    "random_profile",
]
