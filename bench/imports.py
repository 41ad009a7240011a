"""7. Cold import time of the Lambda handler (``cqrs.aws``) vs ``boto3`` alone.

Each measurement is a fresh interpreter (``sys.executable -c``) timing the
import in-process (interpreter start-up excluded); best of N. The cold path is
also split into phases (boto3, pydantic, cqrs, building the app). The full cold
start, import plus a first batch of 10 records on a moto server against a plain
boto3 handler making the same writes, is :mod:`bench.coldstart` (medians).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from .engine import REPO, TABLES
from .report import Section

BOTO_COLD = "boto3 handler cold start: import boto3 + DynamoDB and Streams clients"
CQRS_COLD = "cqrs handler cold start: import cqrs.aws + build the app (first invocation)"
FIRST_BATCH = "cqrs handler: import + first batch of 10 creates (moto server), median"
PLAIN_FIRST_BATCH = "plain boto3 handler: import + the same writes (moto server), median"
CASES = {
    "import boto3": "import boto3",
    "import cqrs.aws (handler module)": "import cqrs.aws",
    "import cqrs.deploy.sweep (task sweep handler module)": "import cqrs.deploy.sweep",
    BOTO_COLD: (
        "import boto3; s = boto3.session.Session(region_name='ap-northeast-1'); "
        "s.client('dynamodb'); s.client('dynamodbstreams')"
    ),
    CQRS_COLD: "import cqrs.aws; cqrs.aws.get_app()",
}

_ENV = {
    "CQRS_TABLES_DIR": str(TABLES),
    "CQRS_ENDPOINT_URL": "http://127.0.0.1:9",  # never contacted
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
}
_TIMED = "import time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)\n"


def time_once(code: str) -> float:
    """Seconds ``code`` takes in a fresh interpreter."""
    out = _run([sys.executable, "-c", _TIMED.format(code=code)]).stdout
    return float(out.strip().splitlines()[-1])


#: The cqrs cold path in phases, each import timed after the previous ones are loaded.
PHASES = (
    ("boto3", "import boto3"),
    ("pydantic", "import pydantic"),
    ("cqrs modules", "import cqrs.aws, cqrs.app"),
    ("building the app (clients, tables/cqrs.json)", "cqrs.aws.get_app()"),
)
_PHASED = (
    "import time, json\nout = []\n"
    + "".join(f"_t = time.perf_counter()\n{code}\nout.append(time.perf_counter() - _t)\n"
              for _, code in PHASES)
    + "print(json.dumps(out))\n"
)  # fmt: skip


def phases(repeat: int) -> list[tuple[str, float]]:
    """Seconds per phase of the cqrs cold path (best of ``repeat`` per phase)."""
    runs = [json.loads(_run([sys.executable, "-c", _PHASED]).stdout) for _ in range(repeat)]
    return [(label, min(r[i] for r in runs)) for i, (label, _) in enumerate(PHASES)]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, **_ENV}
    )


def run(repeat: int) -> Section:
    """Best of ``repeat`` per case."""
    section = Section(
        f"7. Cold import time (fresh interpreter per run, best of {repeat})",
        ["What", "ms"],
    )
    best = {label: min(time_once(code) for _ in range(repeat)) for label, code in CASES.items()}
    for label, seconds in best.items():
        section.rows.append([label, f"{1000 * seconds:.0f}"])
    handler, boto = best[CQRS_COLD], best[BOTO_COLD]
    split = ", ".join(f"{label} {1000 * sec:.0f} ms" for label, sec in phases(repeat))
    from .coldstart import measure

    batch = measure(max(repeat, 5))
    for name, label in (("cqrs", FIRST_BATCH), ("boto3", PLAIN_FIRST_BATCH)):
        section.rows.append([label, f"{1000 * statistics.median(batch.wall[name]):.0f}"])
    section.notes += [
        f"The cqrs cold start costs {1000 * (handler - boto):.0f} ms more than a plain boto3 "
        f"handler's ({handler / boto:.2f}x). Where it goes (each phase timed after the "
        f"previous ones, best of {repeat}): {split}.",
        f"Cold start with a first batch (fresh interpreter: import, then 10 creates projected "
        f"on a moto server; medians of {len(batch.wall['cqrs'])} interleaved runs, "
        f"`python -m bench.coldstart`): cqrs {batch.ratio(batch.wall):.2f}x the plain boto3 "
        f"handler making the same requests (handler CPU: {batch.ratio(batch.cpu):.2f}x).",
        "`import cqrs.aws` alone loads nothing heavy: the app (boto3, pydantic) is imported on "
        "the first invocation, which builds only the projection path (no pydantic-settings, "
        "injector, event bus, write or read services). tests/test_import_time.py and "
        "tests/test_cold_start.py check what this path imports.",
        "Interpreter start-up is excluded (the timer starts inside the fresh interpreter).",
    ]
    return section
