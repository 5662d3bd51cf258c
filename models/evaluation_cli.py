"""``flarewatch evaluate``: load recordings, (optionally) train the confirmer, measure, report."""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TimeRemainingColumn

from flarewatch.output_files import check_writable
from models.alarm import Alarm
from models.artifact_identity import content_digest, software
from models.artifacts import default_bank, save_confirmer
from models.bank import DetectorBank
from models.confirm import Confirmer
from models.const import MODEL_VERSION, TRADEOFF_SURGE_SETTINGS
from models.datasets import DATA_DIR, Split, load_fitbit, load_stress_predict
from models.detector import PatientDetector
from models.evaluation import (
    BankFactory,
    EvaluationResult,
    evaluate_fitbit,
    evaluate_stress,
    evaluation_streams,
    samples_to_process,
)
from models.labels import load_labelled_onsets
from models.metrics import markdown_report, summary, wearer_records
from models.model_card import Measured, model_card_path, training_data, write_model_card
from models.own_evaluation import check_wearers, evaluate_own
from models.own_recordings import read_episodes, recording_files
from models.own_report import write_report
from models.profiles import DetectionProfile, profile_params, profile_surge, profile_target
from models.report import plot_delays, plot_examples, plot_wearers
from models.study_labels import load_study, study_onsets
from models.tradeoff import plot_tradeoff, tradeoff_markdown, tradeoff_point
from models.training import train_confirmer
from models.uncertainty import intervals_markdown, subject_intervals

log = logging.getLogger(__name__)


def run_split(
    bank_factory: BankFactory,
    split: Split,
    seed: int,
    data_dir: Path,
    *,
    max_fitbit_days: float | None = None,
    max_sessions: int | None = None,
    max_fitbit_users: int | None = None,
    console: Console | None = None,
    without: Sequence[str] = (),
) -> EvaluationResult:
    """Evaluate one split of the recordings with banks from ``bank_factory`` (seeded).

    ``without`` names sensors (keys of SENSOR_COLUMNS) hidden from the detectors.
    """
    fitbit = load_fitbit(data_dir, split, limit=max_fitbit_users, max_days=max_fitbit_days)
    stress = load_stress_predict(data_dir, split, limit=max_sessions)
    fitbit = [r.without(without) for r in fitbit]
    stress = [r.without(without) for r in stress]
    stress_rng, fitbit_rng = evaluation_streams(seed)
    result = EvaluationResult()
    with progress_bar(console) as progress:
        task = progress.add_task(f"evaluating ({split})", total=samples_to_process(fitbit, stress))

        def advance(n: int) -> None:
            progress.advance(task, n)

        evaluate_stress(bank_factory, stress, stress_rng, result, advance)
        evaluate_fitbit(bank_factory, fitbit, fitbit_rng, result, advance)
    return result


def progress_bar(console: Console | None) -> Progress:
    """The samples-replayed bar of the long evaluations, on ``console`` (None: no bar)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed:,}/{task.total:,} samples",
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
        disable=console is None,
    )


def tradeoff_command(args: argparse.Namespace, console: Console) -> int:
    """``flarewatch evaluate --tradeoff``: the surge rule's curve on a split's Fitbit users."""
    data_dir: Path = args.data or DATA_DIR
    without = _without(args)
    fitbit = load_fitbit(data_dir, args.split, max_days=args.max_fitbit_days)
    fitbit = [r.without(without) for r in fitbit]
    settings = TRADEOFF_SURGE_SETTINGS
    points = []
    with progress_bar(console) as progress:
        calibrated = [p for p in DetectionProfile if profile_target(p) is not None]
        runs = [(setting, None) for setting in settings] + [
            (profile_surge(p), profile_target(p)) for p in calibrated
        ]
        total = len(runs) * sum(len(r.frame) for r in fitbit)
        task = progress.add_task(f"trade-off ({args.split})", total=total)
        for setting, target in runs:
            points.append(
                tradeoff_point(
                    setting, fitbit, args.seed, lambda n: progress.advance(task, n), target
                )
            )
    stem = f"evaluation-{args.split}-tradeoff" + _without_suffix(without)
    title = (
        f"surge rule trade-off, Fitbit users of split '{args.split}', seed {args.seed}, "
        + (f"band without {', '.join(without)}, " if without else "")
        + f"rules {MODEL_VERSION}"
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(tradeoff_markdown(points, f"## {title}"), encoding="utf-8")
    plot_tradeoff(points, out / "img" / f"{stem}.png", title)
    console.print(f"trade-off written to {out / f'{stem}.md'}")
    return 0


def count_bar(console: Console, unit: str) -> Progress:
    """A bar of ``--recordings`` counting ``unit`` (files read, pictures drawn), gone once done.

    A study's folder takes minutes to read, and its hundreds of episodes a minute to draw.
    """
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed:,}/{task.total:,} " + unit,
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


OWN_RECORDINGS_CONFLICTS = (
    ("train", "--train"),
    ("labels", "--labels"),
    ("tradeoff", "--tradeoff"),
    ("data", "--data"),
    ("max_fitbit_days", "--max-fitbit-days"),
    ("max_sessions", "--max-sessions"),
)
"""Flags of the bundled recordings' evaluation that mean nothing with ``--recordings``."""


def own_recordings_command(args: argparse.Namespace, console: Console) -> int:
    """``flarewatch evaluate --recordings DIR``: the detectors on your recordings and episodes."""
    used = [flag for name, flag in OWN_RECORDINGS_CONFLICTS if getattr(args, name, None)]
    if args.split != "holdout":
        used.append("--split")
    if used:
        console.print(
            f"[red]{', '.join(used)}: for the bundled recordings, not with --recordings[/red]"
        )
        return 2
    without = _without(args)
    out: Path = args.out
    stem = report_stem("evaluation-own", args, without)
    check_writable(out / f"{stem}.md", "--out")  # before the evaluation, not after it
    files = recording_files(args.recordings, skip=args.episodes)
    # what the episodes file alone can tell is checked before reading any recording
    episodes = [] if args.episodes is None else read_episodes(args.episodes, files.keys())
    inject = not args.no_inject
    with count_bar(console, "files") as reading:
        task = reading.add_task("reading recordings", total=len(files))
        wearers = check_wearers(
            args.recordings,
            files,
            args.episodes,
            episodes,
            args.seed,
            inject=inject,
            progress=lambda done, _: reading.update(task, completed=done),
        )
    factory = bank_factory(args)
    console.print(
        f"[bold]evaluating {len(wearers)} recordings of {args.recordings} (seed {args.seed})[/bold]"
    )
    with progress_bar(console) as progress:
        task = progress.add_task("evaluating", total=sum(w.samples for w in wearers))
        evaluation = evaluate_own(
            factory,
            wearers,
            episodes,
            lambda n: progress.advance(task, n),
            inject=inject,
            without=without,
        )
    model_version = factory().model_version
    meta = {
        "model_version": model_version,
        "profile": args.profile,
        "seed": args.seed,
        "without": without,
        "episodes_file": None if args.episodes is None else args.episodes.name,
        "injected_episodes": inject,
    }
    header = (
        f"## Results: your recordings `{args.recordings.name}`, seed {args.seed}, "
        f"model `{model_version}`, profile `{args.profile}`"
        + (f", band without {', '.join(without)}" if without else "")
    )
    with count_bar(console, "pictures") as progress:
        task = progress.add_task("drawing each labelled episode", total=len(episodes))
        report = write_report(
            evaluation,
            wearers,
            episodes,
            out,
            stem,
            header,
            meta,
            lambda n: progress.advance(task, n),
        )
    headline = {key: report[key] for key in ("real", "injected")}
    for part in headline.values():
        if part is not None:
            part.pop("wearers")
            part.pop("signal_states", None)
            part.pop("episodes", None)
    console.print_json(json.dumps(headline))
    console.print(f"report written to {out / f'{stem}.md'}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """Handler of ``flarewatch evaluate`` (see ``flarewatch evaluate --help``)."""
    console = Console(stderr=True)
    # getattr: the flags come from models.own_arguments.add_own_recordings_arguments
    if getattr(args, "recordings", None) is not None:
        return own_recordings_command(args, console)
    if getattr(args, "episodes", None) is not None or getattr(args, "no_inject", False):
        console.print("[red]--episodes and --no-inject go with --recordings DIR[/red]")
        return 2
    if args.tradeoff:
        return tradeoff_command(args, console)
    data_dir: Path = args.data or DATA_DIR
    out: Path = args.out
    limits = {"max_fitbit_days": args.max_fitbit_days, "max_sessions": args.max_sessions}
    without = _without(args)
    training_info = None
    confirmer: Confirmer | None = None
    if args.labels is not None and not args.train:
        console.print("[red]--labels trains the confirmer: use it with --train[/red]")
        return 2
    if args.train and args.model is None:
        console.print(
            "[red]--train writes a new confirmer and its model card: say where with --model "
            "PATH (the service reads it from service.confirmer_path; to replace the released one "
            "in a source checkout: --model models/artifacts/confirmer.skops)[/red]"
        )
        return 2
    if args.train:
        card = model_card_path(args.model)
        for path in (args.model, card):  # before the minutes of training, not after them
            check_writable(path, "--model")
        real, sources = real_labels(args.labels or [], console)
        console.print("[bold]training the confirmer on the tuning split (rules only)[/bold]")
        tuning = run_split(
            rules_only_bank, "tuning", args.seed, data_dir, console=console, **limits
        )
        version = f"confirm-{args.seed}" + ("-labelled" if real else "")
        confirmer, training_info = train_confirmer(tuning.candidates, args.seed, version, real=real)
        if sources:
            training_info["real_labels"] = sources
        training_info |= {
            "data": training_data(tuning, args.seed, limits, args.data),
            "software": software(),
            "digest": content_digest(confirmer),
        }
        save_confirmer(confirmer, args.model, {"seed": args.seed, **training_info})
        # the card at once, measured or not: one left from an earlier model would describe it
        write_model_card(card, confirmer.version, training_info, None)
        console.print(f"saved {args.model} (threshold {confirmer.threshold:.3f})")

    profile = DetectionProfile(args.profile)
    factory = bank_factory(args, confirmer)
    bank = factory()  # a --model that cannot be used is said now, not after the replay
    console.print(f"[bold]evaluating split '{args.split}' (seed {args.seed})[/bold]")
    result = run_split(
        factory, args.split, args.seed, data_dir, console=console, without=without, **limits
    )
    headline = summary(result)
    headline["ci95"] = subject_intervals(result, args.seed)
    header = (
        f"## Results: split `{args.split}`, seed {args.seed}, model `{bank.model_version}`, "
        f"profile `{profile}`"
        + (f", band without {', '.join(without)}" if without else "")
        + (f", limits {limits}" if any(v is not None for v in limits.values()) else "")
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = report_stem(f"evaluation-{args.split}", args, without)
    report = markdown_report(result, header) + "\n" + intervals_markdown(headline["ci95"])
    (out / f"{stem}.md").write_text(report, encoding="utf-8")
    (out / f"{stem}.json").write_text(
        json.dumps(
            {
                "model_version": bank.model_version,
                "without": without,
                **headline,
                "wearers": wearer_records(result),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    plot_examples(result, out / "img" / f"{stem}-examples.png")
    plot_delays(result, out / "img" / f"{stem}-delays.png")
    plot_wearers(result, out / "img" / f"{stem}-wearers.png")
    if training_info is not None and confirmer is not None:
        measured = Measured(headline, args.split, str(profile), args.rules_only, without)
        write_model_card(model_card_path(args.model), confirmer.version, training_info, measured)
    console.print_json(json.dumps(headline))
    console.print(f"report written to {out / f'{stem}.md'}")
    return 0


def bank_factory(args: argparse.Namespace, confirmer: Confirmer | None = None) -> BankFactory:
    """New banks as the evaluation measures them: confirmer (or rules only) and profile."""
    profile = DetectionProfile(args.profile)

    def factory() -> DetectorBank:
        if args.rules_only:
            bank = rules_only_bank()
        elif confirmer is not None:
            bank = DetectorBank(PatientDetector(), confirmer)
        else:
            bank = default_bank(confirmer_path=args.model)
        if profile is not DetectionProfile.BALANCED:
            bank.template = PatientDetector(**profile_params(profile))
        return bank

    return factory


def report_stem(prefix: str, args: argparse.Namespace, without: list[str]) -> str:
    """A report's file name: the profile, rules only and hidden sensors say which run it is."""
    profile = DetectionProfile(args.profile)
    return (
        prefix
        + ("" if profile is DetectionProfile.BALANCED else f"-{profile}")
        + ("-rules-only" if args.rules_only else "")
        + _without_suffix(without)
    )


def _without(args: argparse.Namespace) -> list[str]:
    """The sensors ``--without`` hides, each once, in a stable order."""
    return sorted(set(args.without or ()))


def _without_suffix(without: list[str]) -> str:
    return "".join(f"-without-{sensor}" for sensor in without)


def real_labels(
    paths: list[Path], console: Console
) -> tuple[list[tuple[Alarm, int]], list[dict[str, Any]]]:
    """The real labelled onsets of every ``--labels`` source, and what each one gave.

    A research export's recordings are replayed through the rules alone (a progress bar each),
    as the tuning split is for training.
    """
    real: list[tuple[Alarm, int]] = []
    sources: list[dict[str, Any]] = []
    for path in paths:
        if path.is_dir():  # a research export, or told why it is not one
            with count_bar(console, "files") as reading:
                task = reading.add_task(f"reading {path.name}", total=0)
                study = load_study(path, functools.partial(_files_read, reading, task))
            with progress_bar(console) as progress:
                task = progress.add_task(f"replaying {path.name}", total=study.samples)
                onsets = study_onsets(
                    study, rules_only_bank, functools.partial(progress.advance, task)
                )
            candidates = onsets.candidates
            info: dict[str, Any] = {"file": path.name, "source": "research export"}
            info |= {"used": len(candidates), **onsets.counts()}
        else:
            labelled = load_labelled_onsets(path)
            candidates = labelled.candidates
            info = {"file": path.name, "source": "label export", "lines": labelled.lines}
            info |= {
                "used": len(candidates),
                "other_rules_version": labelled.other_rules,
                "rejected": labelled.rejected,
                **labelled.counts(),
            }
        console.print(f"real labelled onsets from {path.name}: {info}")
        real += candidates
        sources.append(info)
    return real, sources


def _files_read(bar: Progress, task: TaskID, done: int, files: int) -> None:
    bar.update(task, completed=done, total=files)


def rules_only_bank() -> DetectorBank:
    """A bank with the rules alone (for training the confirmer and for ablations)."""
    return DetectorBank(PatientDetector())
