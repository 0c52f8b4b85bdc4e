"""`fastddsp bench`: real-time factors of models, runtimes and trackers, or of the streaming
engine per block. The measuring is ``fastddsp.bench``'s; this prints its rows."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable

from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("bench", help="real-time factors of models, runtimes and trackers")
    s.add_argument("--stream", action="store_true",
                   help="time the streaming engine per block (median, p99, max) instead")
    s.add_argument("--models", nargs="+", help="bundled names, files or presets "
                   "(default: every bundled model)")
    s.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    s.add_argument("--seconds", type=float, default=4.0, help="audio length (default 4)")
    s.add_argument("--runs", type=int, default=20, help="timed runs, median (default 20)")
    s.add_argument("--quick", action="store_true",
                   help="violin-tiny, 1 s, 3 runs, no CREPE-full: a smoke run for CI")
    s.add_argument("--json", help="also write the figures as JSON")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_text_atomic

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        raise UserError("--threads must be positive integers, e.g. 1,2")
    if args.runs < 1 or args.seconds <= 0:
        raise UserError("--runs must be at least 1 and --seconds positive")
    rows = _stream(args, threads) if args.stream else _table(args, threads)
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return 0


def _table(args: argparse.Namespace, threads: list[int]) -> list[dict]:
    from ..bench import bench_table, machine
    from ..models import bundled_models

    quick = args.quick
    names = args.models or (["violin-tiny"] if quick else list(bundled_models()) or ["tiny"])
    seconds = 1.0 if quick else args.seconds
    runs = 3 if quick else args.runs
    trackers = ["fast", "crepe-tiny"] + ([] if quick else ["crepe-full"])
    print(f"# {machine()}, {seconds:g} s of audio, median of {runs} runs; x = audio seconds "
          "per wall second")
    print("# controls: a real performance (the built-in sung phrase's CREPE-full features and a "
          "melody with vibrato, slides and dynamics); '(steady note)': the synthetic best case")
    print(f"{'model':14} {'threads':>7} {'what':32} {'median ms':>10} {'x real time':>12}")
    return _print_table(bench_table(names, threads, seconds, runs, trackers), seconds)


def _print_table(rows: Iterable[dict], seconds: float) -> list[dict]:
    """Print each row of ``bench_table`` as it comes; all of them."""
    done: list[dict] = []
    for r in rows:
        name, threads = r["model"], r["threads"]
        if r["name"] == "peak memory":
            if not done or done[-1]["name"] != "peak memory":
                print(f"# peak memory of a fresh process synthesizing {seconds:g} s end to end")
            what = f"peak RSS MiB (loaded {r['rss_loaded_mib']:.0f})"
            print(f"{name:14} {threads:7} {what:32} {r['peak_rss_mib']:10.0f}")
        elif name == "-":  # a pitch tracker
            print(f"{name:14} {threads:7} {r['name']:32} {r['median_s'] * 1e3:10.2f} "
                  f"{r['realtime_factor']:12,.1f}")
        else:
            what = r["name"] + (" (steady note)" if r["controls"] == "steady" else "")
            print(f"{name:14} {threads:7} {what:32} {r['median_s'] * 1e3:10.2f} "
                  f"{r['realtime_factor']:12,.0f}")
        done.append(r)
    return done


def _stream(args: argparse.Namespace, threads: list[int]) -> list[dict]:
    from ..bench import bench_streams

    names = args.models or ["violin-tiny", "violin-cnn"]
    n_blocks = 500 if args.quick else 10_000
    print(f"# streaming engine, {n_blocks} blocks each; times per block in ms")
    print(f"{'model':14} {'threads':>7} {'block':>5} {'budget':>7} {'median':>7} {'p99':>7} "
          f"{'max':>7} {'over':>5} {'latency declared/measured':>26}")
    rows = []
    for r in bench_streams(names, threads, n_blocks):
        print(f"{r['model']:14} {r['threads']:7} {r['block']:5} {r['block_ms']:7.2f} "
              f"{r['median_ms']:7.3f} {r['p99_ms']:7.3f} {r['max_ms']:7.3f} "
              f"{r['over_budget']:5} {r['latency_ms']:12.1f} / "
              f"{r['latency_measured_ms']:.1f} ms")
        rows.append(r)
    return rows
