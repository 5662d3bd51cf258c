"""``flarewatch detect`` (replay a recording) and ``flarewatch evaluate`` (measure detectors)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from flarewatch import cli_types
from flarewatch.errors import ConfigError
from flarewatch.output_files import check_writable, make_folder, same_file, writing
from models.const import SENSOR_COLUMNS
from models.own_arguments import add_own_recordings_arguments
from models.profiles import DetectionProfile

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from flarewatch.payloads import Sample
    from models.alarm import Alarm
    from models.bank import DetectorBank

log = logging.getLogger(__name__)

STDOUT_CLOSED_EXIT: Final = 141
"""Exit code when the reader of standard output went away (``| head``): 128 + SIGPIPE, what a
shell reports for a process stopped by that signal, so that a script can tell the events were
not all read."""

STDOUT_PATH: Final = Path("-")
"""``--out -``: standard output, as most command-line tools take it."""

PROGRESS_LOG_INTERVAL_S: Final = 30.0
"""How often a replay whose stderr is no terminal logs how far it got: 5 million rows take
minutes; every 30 s tells a log reader it is alive without filling the log."""


def add_commands(subparsers: Any) -> None:
    """Register the detection commands on the ``flarewatch`` parser."""
    detect = subparsers.add_parser(
        "detect",
        help="replay a recording CSV through the detectors and write the alarms as JSON lines",
        description=(
            "Run the streaming detectors of the service, from an empty state, over REC.csv "
            "(header with time_s and any of hr_bpm, skin_temp_c, steps, acc_g, acc_sd_g) and "
            "write one JSON object per alarm, in time order."
        ),
    )
    detect.add_argument("--input", type=Path, required=True, help="recording CSV (.gz allowed)")
    detect.add_argument(
        "--out", type=Path, default=None, help="events JSONL (default or '-': stdout)"
    )
    detect.add_argument("--patient", default="replay", help="patient id stamped on the alarms")
    detect.add_argument(
        "--model", type=Path, default=None, help="confirmer artifact (default: the released one)"
    )
    detect.add_argument(
        "--rules-only", action="store_true", help="skip the learned confirmer (rules alone)"
    )
    _profile_argument(detect, "detection profile of the replayed patient (stamped on alarms)")
    detect.add_argument(
        "--compare-profiles",
        action="store_true",
        help="replay under every detection profile and print what each would have raised "
        "(--out writes it as JSON instead)",
    )
    detect.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="with --compare-profiles: also draw each profile's alarms over time to this PNG",
    )
    detect.set_defaults(handler=run_detect)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="inject synthetic episodes into the real recordings and measure the detectors",
    )
    evaluate.add_argument("--data", type=Path, default=None, help="recordings folder")
    evaluate.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report folder (default: a new temporary folder; the published reports: --out docs)",
    )
    evaluate.add_argument("--seed", type=cli_types.seed, default=20261125, help="random seed")
    evaluate.add_argument(
        "--split", choices=("holdout", "tuning", "all"), default="holdout", help="subjects to use"
    )
    evaluate.add_argument(
        "--max-fitbit-days",
        type=cli_types.positive,
        default=None,
        help="cap days per Fitbit user (quick runs)",
    )
    evaluate.add_argument(
        "--max-sessions",
        type=cli_types.positive_int,
        default=None,
        help="cap stress-predict sessions (quick runs)",
    )
    evaluate.add_argument(
        "--train", action="store_true", help="train the confirmer on the tuning split and save it"
    )
    evaluate.add_argument(
        "--labels",
        type=Path,
        action="append",
        default=None,
        metavar="LABELS",
        help="with --train: also learn from real episodes a care team labelled: a label export "
        "(JSONL from 'flarewatch admin episode export-labels') or a research export folder "
        "('flarewatch admin research export', replayed through these rules); repeat it to pool "
        "several",
    )
    evaluate.add_argument("--rules-only", action="store_true", help="evaluate without confirmer")
    evaluate.add_argument(
        "--model",
        type=Path,
        default=None,
        help="confirmer artifact to evaluate (default: the released one); with --train, where "
        "the new one and its MODEL_CARD.md are written (required then)",
    )
    _profile_argument(evaluate, "detection profile to evaluate (reports get its name as suffix)")
    evaluate.add_argument(
        "--without",
        action="append",
        choices=sorted(SENSOR_COLUMNS),
        help="evaluate as a band lacking this sensor (repeatable; same episodes as with it)",
    )
    evaluate.add_argument(
        "--tradeoff",
        action="store_true",
        help="sweep the surge thresholds on the split's Fitbit users and plot the trade-off curve",
    )
    add_own_recordings_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def _profile_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--profile",
        choices=[p.value for p in DetectionProfile],
        default=DetectionProfile.BALANCED.value,
        help=help_text,
    )


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """On a terminal, say the recording is being read: 5 million rows take 20 s."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(f"reading {path.name}"):
        yield


@contextmanager
def _sample_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A callback counting the samples replayed, shown on stderr.

    On a terminal, a bar gone once done; otherwise (a log file, a job) a log line every
    PROGRESS_LOG_INTERVAL_S, since a bar there prints nothing but a blank line at the end.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        with _bar(console) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
        return
    done, logged_s = 0, time.monotonic()

    def advance(n: int) -> None:
        nonlocal done, logged_s
        done += n
        if time.monotonic() - logged_s >= PROGRESS_LOG_INTERVAL_S:
            logged_s = time.monotonic()
            share = 100 * done // max(total, 1)
            log.info("%s: %d of %d samples (%d %%)", description, done, total, share)

    yield advance


def _bar(console: Console) -> Progress:
    """The replay's bar: samples done of all, gone once done."""
    from rich.progress import BarColumn, Progress

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed:,}/{task.total:,} samples",
        console=console,
        transient=True,
    )


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``flarewatch detect``."""
    from models.artifacts import default_bank
    from models.recording import iter_samples, read_recording
    from models.replay import replay, write_events

    if args.plot is not None and not args.compare_profiles:
        raise ConfigError("--plot draws the profile comparison: add --compare-profiles")
    if (args.out is None or args.out == STDOUT_PATH) and sys.stdout is None:
        # Python's stdout when descriptor 1 was closed (">&-"): said before the replay
        raise ConfigError("standard output is closed: name a file with --out")
    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and not (option == "--out" and path == STDOUT_PATH):
            if same_file(path, args.input):
                raise ConfigError(f"{option} {path} is the input recording: it would be replaced")
            check_writable(path, option)  # before the replay, not after it
    with _reading(args.input):
        frame, quality = read_recording(args.input)
    quality.log_losses(args.input)
    bank = default_bank(confirmer_path=args.model, rules_only=args.rules_only)
    if args.compare_profiles:
        return _compare_profiles(args, bank, iter_samples(frame), len(frame))
    bank.set_profile(args.patient, DetectionProfile(args.profile))
    with _sample_progress("replaying", len(frame)) as progress:
        alarms = replay(bank, args.patient, iter_samples(frame), progress=progress)
    if not _write_output(args.out, lambda out: write_events(alarms, out)):
        return STDOUT_CLOSED_EXIT
    log.info(
        "%d samples replayed, %d alarm events written (%s; model %s)",
        len(frame),
        len(alarms),
        raised_summary(alarms),
        bank.model_version,
    )
    return 0


def raised_summary(alarms: list[Alarm]) -> str:
    """What a replay raised, counted as ``--compare-profiles`` counts: episode onsets.

    Onsets per kind (the anaphylaxis-like ones critical from the start in brackets), then the
    escalations of episodes already open and the signal states, each named for what it is.
    """
    from models.alarm import AlarmKind, Severity, is_onset
    from models.evaluation import SIGNAL_KINDS

    raised = [a for a in alarms if not a.resolved]
    onsets = [a for a in raised if is_onset(a)]
    anaphylaxis = [a for a in onsets if a.kind is AlarmKind.ANAPHYLAXIS]
    critical = sum(1 for a in anaphylaxis if a.severity is Severity.CRITICAL)
    flush = sum(1 for a in onsets if a.kind is AlarmKind.FLUSH)
    signal = Counter(a.kind.value for a in raised if a.kind in SIGNAL_KINDS)
    escalations = len(raised) - len(onsets) - sum(signal.values())
    states = ", ".join(f"{n} {kind}" for kind, n in sorted(signal.items())) or "none"
    return (
        f"onsets: {len(anaphylaxis)} anaphylaxis-like ({critical} critical), {flush} flush; "
        f"escalations of an open episode: {escalations}; signal states: {states}"
    )


def _compare_profiles(
    args: argparse.Namespace, bank: DetectorBank, samples: Iterator[Sample], total: int
) -> int:
    """``detect --compare-profiles``: every profile over the recording, as a table or JSON."""
    from models.const import EVAL_CHUNK_S
    from models.profile_comparison import compare_profiles, comparison_json, write_comparison
    from models.replay import chunk_by_time

    with _sample_progress("replaying under every profile", total) as progress:
        comparison = compare_profiles(bank, chunk_by_time(samples, EVAL_CHUNK_S), progress=progress)
    if args.plot is not None:
        from models.report import plot_profile_comparison

        with writing("--plot", args.plot):
            plot_profile_comparison(comparison, (), args.plot)
    if args.out is None:
        written = _to_stdout(lambda out: write_comparison(comparison, (), out))
    else:
        as_json = json.dumps(comparison_json(comparison, ()), indent=2) + "\n"
        written = _write_output(args.out, lambda out: out.write(as_json))
    return 0 if written else STDOUT_CLOSED_EXIT


def _write_output(path: Path | None, write: Callable[[IO[str]], object]) -> bool:
    """``write`` to the ``--out`` file, or to stdout (no ``--out``, or ``-``).

    False when the reader of stdout went away early (see :func:`_to_stdout`).
    """
    if path is None or path == STDOUT_PATH:
        return _to_stdout(write)
    with writing("--out", path), path.open("w", encoding="utf-8") as out:
        write(out)
    return True


def _to_stdout(write: Callable[[IO[str]], object]) -> bool:
    """``write(sys.stdout)``; False when its reader went away early (``| head``).

    The rest of the output is dropped, quietly: a closed pipe is the reader's choice, not an
    error worth a traceback.
    """
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        log.info("standard output closed by its reader: the remaining events were not written")
        return False
    except OSError as exc:  # a full disk (> /dev/full), an I/O error
        _discard_stdout()
        raise ConfigError(f"standard output: cannot write ({exc.strerror or exc})") from exc
    return True


def _discard_stdout() -> None:
    """Send what is left in stdout's buffer to /dev/null once writing it failed.

    Python flushes stdout once more on exit and would report the failure again
    ("Exception ignored ... BrokenPipeError"), after the command had said what happened.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``flarewatch evaluate``."""
    from models.evaluation_cli import evaluate_command

    if args.out is None:
        # Not docs/: run from a checkout, a quick run, another seed or a new model would replace
        # the published reports with its own figures.
        args.out = Path(tempfile.mkdtemp(prefix="flarewatch-evaluate-"))
    # before the evaluation, not after it; a report on real people's recordings is theirs only
    make_folder(args.out, "--out", private=getattr(args, "recordings", None) is not None)
    return int(evaluate_command(args))
