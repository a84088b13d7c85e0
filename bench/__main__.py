"""Run the appyard benchmarks and print figures next to their targets.

    python -m bench [--only warm,cold,burst,idle,scale,streaming] [--out FILE]

All traffic stays on loopback; every loop is bounded in count and time. Needs podman,
wrk and nginx (scripts/install.sh --test installs them).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import lifecycle_bench, proxy_bench
from bench.harness import dump

SECTIONS: dict[str, Callable[[Path], Any]] = {
    "warm": proxy_bench.warm_proxy,
    "cold": lifecycle_bench.cold_start,
    "burst": lifecycle_bench.burst,
    "idle": lifecycle_bench.idle_accuracy,
    "scale": proxy_bench.scale,
    "streaming": proxy_bench.streaming,
}

# (section, figure, target text, check)
TARGETS: list[tuple[str, str, str, Callable[[Any], bool]]] = [
    ("warm", "appyard_vs_nginx_c64", ">= 0.5", lambda v: v >= 0.5),
    ("warm", "added_p50_ms_c1", "<= 0.5 ms", lambda v: v <= 0.5),
    ("cold", "added_ms", "<= 100 ms", lambda v: v <= 100),
    ("burst", "errors", "0", lambda v: v == 0),
    ("burst", "containers_started", "1", lambda v: v == 1),
    ("idle", "max_late_secs", "<= 2 s", lambda v: v is not None and v <= 2),
    ("scale", "rss_mb", "<= 150 MB", lambda v: v <= 150),
    ("scale", "server_start_secs", "<= 2 s", lambda v: v <= 2),
    ("scale", "latency_ratio", "<= 1.10", lambda v: v <= 1.10),
    ("streaming", "sse_added_ms", "<= 5 ms", lambda v: v <= 5),
    ("streaming", "dropped", "0", lambda v: v == 0),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [("figure", "value", "target", "met")]
    for section, figure, target, check in TARGETS:
        if section in results:
            value = results[section].get(figure)
            rows.append(
                (f"{section}.{figure}", str(value), target, "yes" if check(value) else "NO")
            )
    for section, figures in results.items():
        for name, value in figures.items():
            if not any(s == section and f == name for s, f, _, _ in TARGETS):
                shown = (
                    value
                    if not isinstance(value, dict)
                    else ", ".join(f"{k}={v}" for k, v in value.items())
                )
                rows.append((f"{section}.{name}", str(shown), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results/latest.json"))
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    results: dict[str, dict[str, Any]] = {}
    began = time.monotonic()
    for name in chosen:
        home = Path(tempfile.mkdtemp(prefix=f"appyard-bench-{name}-"))
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            results[name] = await SECTIONS[name](home)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        print(f"   {results[name]} ({time.monotonic() - started:.0f}s)", flush=True)
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"{platform.platform()}",
        "total_secs": round(time.monotonic() - began),
    }
    dump({"meta": meta, "results": results}, Path(args.out))
    print(f"\nappyard benchmarks, {meta['date']}, {meta['machine']}, {meta['total_secs']} s\n")
    print(table(results))


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
