"""``python -m bench [--quick] [--out FILE]``: run every benchmark, print a markdown report.

All benchmarks run in one process on one in-process moto engine (``mock_aws``);
the import benchmark uses fresh interpreters. Progress goes to stderr, the
report to stdout and, with ``--out``, to a file.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from .engine import embedded_engine, fake_aws_environment
from .report import Section, render


@dataclass(frozen=True)
class Config:
    """How big each benchmark is."""

    entities: int  # 1. cost per command: commands per variant
    cost_rounds: int  # rounds of section 1 (CPU medians)
    batching_entities: int  # 2. commands per batch size (fills a batch of 100)
    batching_rounds: int
    parallel_entities: int  # 3. entities with a burst of versions each
    throughput_n: int  # 4. commands per phase
    throughput_rounds: int
    lag_samples: int  # 5.
    growth_k: int  # 6. commands measured per setup
    versions: tuple[int, ...]
    sizes: tuple[int, ...]
    import_repeat: int  # 7.
    large_entities: int  # 8. entities per size and placement


FULL = Config(100, 3, 100, 3, 25, 100, 3, 100, 20, (1, 100, 1000), (1_000, 100_000), 7, 20)
QUICK = Config(25, 3, 100, 1, 25, 30, 1, 30, 8, (1, 100, 1000), (1_000, 10_000), 3, 5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return the exit code."""
    args = _parser().parse_args(argv)
    config = QUICK if args.quick else FULL
    fake_aws_environment()
    started = time.perf_counter()
    load_before = os.getloadavg()
    sections = run_all(config, args.quick)
    elapsed = time.perf_counter() - started
    command = "python -m bench" + (" --quick" if args.quick else "")
    command += f" --out {args.out}" if args.out else ""
    text = render(_header(command, args.quick, elapsed, load_before), sections)
    sys.stdout.write(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        _progress(f"wrote {args.out}")
    return 0


def run_all(config: Config, quick: bool) -> list[Section]:
    """Every benchmark, in order."""
    from cqrs.deploy.resources import HandlerSettings

    from . import batching, growth, imports, lag, large, requests, throughput

    mapping = HandlerSettings()  # the template's defaults
    batch, factor = mapping.batch_size, mapping.parallelization_factor
    scaled = (
        f"--quick: the large table is scaled down from 100,000 to {config.sizes[-1]:,} "
        "entities." if quick else ""
    )  # fmt: skip
    steps: list[tuple[str, Callable[[], Section]]] = [
        ("cost per command", lambda: requests.run(config.entities, batch, config.cost_rounds)),
        ("batch sizes", lambda: batching.run_batches(config.batching_entities,
                                                     config.batching_rounds, batch)),
        ("parallelization", lambda: batching.run_parallel(config.parallel_entities, batch,
                                                          factor)),
        ("throughput", lambda: throughput.run(config.throughput_n, config.throughput_rounds)),
        ("sync lag", lambda: lag.run(config.lag_samples)),
        ("cost growth", lambda: growth.run(config.growth_k, config.versions, config.sizes,
                                           scaled)),
    ]  # fmt: skip
    sections = []
    total = len(steps) + 2
    with embedded_engine():
        for i, (name, step) in enumerate(steps, 1):
            sections.append(_timed(f"[{i}/{total}] {name}", step))
    imports_step = f"[{total - 1}/{total}] import time"
    sections.append(_timed(imports_step, lambda: imports.run(config.import_repeat)))
    with embedded_engine():
        large_step = f"[{total}/{total}] large attributes"
        sections.append(_timed(large_step, lambda: large.run(config.large_entities)))
    return sections


def _timed(name: str, step: Callable[[], Section]) -> Section:
    _progress(f"{name} ...")
    start = time.perf_counter()
    section = step()
    _progress(f"{name}: {time.perf_counter() - start:.0f} s")
    return section


def _header(command: str, quick: bool, elapsed: float, load_before: tuple[float, ...]) -> list[str]:
    load_after = os.getloadavg()
    versions = ", ".join(f"{p} {version(p)}" for p in ("cqrs", "boto3", "botocore", "moto"))
    return [
        "## cqrs benchmarks" + (" (--quick)" if quick else ""),
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s in total.",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} at start / "
        f"{load_after[0]:.1f} at end; {versions}.",
        "Engine: in-process moto (`mock_aws`), the `CQRS_ENDPOINT_URL=embedded` engine; "
        "tables from `tables/`. Request counts are deterministic; times depend on the machine "
        "and on moto, whose per-request cost is far above DynamoDB's service time.",
    ]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the report to FILE")
    return p


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
