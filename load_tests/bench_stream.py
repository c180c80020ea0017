"""Streaming benchmark of the stage pipeline (issue 10 point 8): every figure beside its ceiling, same run.

    .venv/bin/python load_tests/bench_stream.py                      # the issue's sizes
    .venv/bin/python load_tests/bench_stream.py --events 200000 --takeover-events 200000 --fresh-seconds 20

Processes are the real ones (``reelroi worker``, ``reelroi sink`` with the
embedded chdb), each phase on a fresh embedded broker, topics of 6
partitions, default settings (checkpoints every 5 s, batches of 20,000
records). Every drain starts its processes on empty topics, waits until both consumer
groups are Stable (``DescribeGroups``), then copies the pre-loaded messages in
(same partitions, same bytes; a few seconds): the clock runs from the copy's
start to the sink's last write, then both groups' lag is checked to be 0.
Start-up (imports, chdb, group join) is printed apart. CPU seconds of every
process are counted from the copy's start.

1. **batches**: the events as ``reelroi produce`` sends them (up to 1,000
   lines a message). A plain aiokafka consumer reads them (the ceiling); one
   worker and the sink drain them: events/s of the whole, of the worker's
   router + stages (to its last record) and of the sink (first to last write).
2. **two workers**: the same messages drained by two workers and the sink.
3. **profile**: a smaller batched drain with the worker under
   load_tests/sampled.py (all threads sampled every 5 ms): where its time goes.
   Apart from 1, so the sampler's cost is in no figure.
4. **one event per message**, as outside producers send (``batching=SINGLE``):
   faust's no-op agent over the same topics (load_tests/faust_noop.py) is the
   ceiling; then one worker and the sink drain them.
5. **freshness** at a steady rate (default 10,000 events/s, batched): the sink
   is load_tests/probe_sink.py, the real sink noting when each fact's write
   returned. Per event: from the moment the benchmark handed its line to the
   producer (its linger included) to the write of its event-log row (router
   only), of its money fact (payments and unlocks: router, order stage, user
   stage), of its user's first user fact (from the user's first redirect).
   Money and user facts are what the ROI report reads. A money fact is timed
   from the later of its event and its user's first redirect.
6. **takeover**: two workers drain a history of twice ``--takeover-events``
   (so the killed worker's half holds about that much), all checkpointed and
   committed; a trickle of new events flows; the worker holding the most user
   partitions is killed with SIGKILL. Per user-stage partition it held: seconds
   from the kill to the first user or money fact the survivor publishes for it
   (the facts topic, read from its end at the kill, record timestamps); the
   survivor's checkpoint loads (``reelroi_stage_load_seconds``).
7. Peak RSS of every process (VmHWM); checkpoint bytes (the state directory)
   per acquired user (rows of ``users``) after the batched drain.

Memory: a worker's buffers count Kafka messages (``REELROI_KAFKA_BATCH_MAX``,
20,000, for ``noack_take`` and faust's stream buffer), and a batched message
holds up to 1,000 lines, so a worker holds its whole backlog: about 3 GB at
300k events, 9.5-12 GB at 1M on this machine. The default sizes (1M, and 2M of
takeover history over two workers) need that much free memory.

The machine's other load is printed per drain (all CPU on the machine minus
this benchmark's processes): figures taken beside other work are lower; CPU
per event is not, and says what free cores would allow. The table and a
markdown block with the command come last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream_drain import (  # noqa: E402
    Drain,
    ceiling,
    drain,
    faust_noop,
    preload,
    where_time_goes,
)
from stream_latency import freshness, percentile, takeover  # noqa: E402

from reelroi.generator import GeneratorConfig, generate  # noqa: E402
from streams.broker import EmbeddedBroker  # noqa: E402
from streams.produce import SINGLE, Batching  # noqa: E402


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


@dataclass
class Row:
    what: str
    figure: str
    ceiling: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "**no**")


def drain_lines(name: str, d: Drain) -> list[str]:
    cpu = ", ".join(f"{k} {v:,.1f}" for k, v in d.cpu.items())
    rss = ", ".join(f"{k} {v:,.0f} MB" for k, v in d.rss_mb.items())
    stages = ", ".join(f"{k} {v:,.1f}" for k, v in sorted(d.stage_seconds.items(), key=lambda kv: -kv[1]))
    return [
        f"{name}: {d.events:,} events, {d.workers} worker(s) + sink, drained (lag 0 in both groups): {d.drained}",
        f"  groups stable {d.started - d.launched:.1f} s after launch; input copied in {d.copied - d.started:.1f} s;"
        f" first record routed after {d.first_routed - d.started:.1f} s, sink's last write after {d.sink_last - d.started:.1f} s",
        f"  {fmt_rate(d.rate)} events/s (input arriving -> last write)",
        f"  worker(s), router + stages: {fmt_rate(d.worker_rate)} events/s (last record after {d.worker_last - d.started:.1f} s)",
        f"  sink: first write to last {d.sink_span:.1f} s, {d.facts:,.0f} facts ({d.facts / max(1e-9, d.sink_span):,.0f}/s),"
        f" ClickHouse write time {d.sink_write_s:.1f} s",
        f"  CPU seconds from the input's arrival: {cpu}; the machine's other load meanwhile {d.others_cpu_s:,.1f} CPU s",
        f"  CPU per event: workers {d.worker_cpu / d.events * 1e6:,.0f} µs, sink {d.cpu['sink'] / d.events * 1e6:,.0f} µs:"
        f" {os.cpu_count()} free cores would run at most {fmt_rate(d.cpu_bound)} events/s",
        f"  stage batch seconds (apply + deliver + checkpoint, wall, summed over workers): {stages}",
        f"  peak RSS: {rss}",
        f"  tables: {', '.join(f'{k} {v:,}' for k, v in d.counts.items())}; checkpoint state {d.state_bytes / 1e6:,.1f} MB",
    ]


def noop_ceiling(bootstrap: str, prefix: str, events: int) -> float | None:
    """faust's no-op agent over the topics; None when the run was too short to time (one batch)."""
    rate = faust_noop(bootstrap, prefix)
    return rate if 0 < rate < events else None  # a whole topic in one batch divides by ~0


def phase_batched(args: argparse.Namespace, lines: list[bytes], work: Path, rows: list[Row]) -> None:
    with EmbeddedBroker() as broker:
        sent, messages, produced = preload(broker.bootstrap, "b.", lines, Batching())
        print(f"pre-loaded {sent:,} events as {messages:,} messages ({fmt_rate(produced)} events/s)")
        ceil = asyncio.run(ceiling(broker.bootstrap, "b.", sent))
        print(f"aiokafka ceiling over those topics: {fmt_rate(ceil)} events/s")
        one = drain(broker, "b.", "b1.", messages, sent, work / "batched", workers=1)
        print("\n".join(drain_lines("batches, one worker", one)))
        rows.append(Row("batches: one worker + sink, input arriving to last write", f"{fmt_rate(one.rate)} ev/s",
                        f"aiokafka {fmt_rate(ceil)}", f"{one.rate / ceil:.3f}", "≥ 50,000; ≥ 0.25",
                        verdict(one.rate >= 50_000 and one.rate / ceil >= 0.25)))  # fmt: skip
        rows.append(Row("  the worker alone (router + stages: input arriving to its last record)",
                        f"{fmt_rate(one.worker_rate)} ev/s", "", f"{one.worker_rate / ceil:.3f}"))  # fmt: skip
        rows.append(Row("  the sink alone (its first write to its last)",
                        f"{fmt_rate(one.events / max(1e-9, one.sink_span))} ev/s ({one.facts:,.0f} facts)"))  # fmt: skip
        rows.append(Row("  CPU per event: worker / sink",
                        f"{one.worker_cpu / one.events * 1e6:,.0f} µs / {one.cpu['sink'] / one.events * 1e6:,.0f} µs",
                        f"{os.cpu_count()} free cores: ≤ {fmt_rate(one.cpu_bound)} ev/s"))  # fmt: skip
        users = one.counts.get("users", 0)
        if users:
            rows.append(Row("checkpoint state per acquired user (state dir / users rows)",
                            f"{one.state_bytes / users:,.0f} B ({one.state_bytes / 1e6:,.1f} MB / {users:,})"))  # fmt: skip
        rows.append(
            Row("peak RSS, one worker / sink", f"{one.rss_mb['worker-0']:,.0f} MB / {one.rss_mb['sink']:,.0f} MB")
        )
        if "two" not in args.phases:
            return
        two = drain(broker, "b.", "b2.", messages, sent, work / "two", workers=2)
        print("\n".join(drain_lines("batches, two workers", two)))
        rows.append(Row("two workers + sink against one, same messages", f"{fmt_rate(two.rate)} ev/s",
                        f"one: {fmt_rate(one.rate)}", f"{two.rate / one.rate:.2f}×", "≥ 1.5×",
                        verdict(two.rate / one.rate >= 1.5)))  # fmt: skip
        rows.append(Row("  the workers alone", f"{fmt_rate(two.worker_rate)} ev/s", f"one: {fmt_rate(one.worker_rate)}",
                        f"{two.worker_rate / one.worker_rate:.2f}×"))  # fmt: skip
        rss = " / ".join(f"{two.rss_mb[f'worker-{i}']:,.0f} MB" for i in range(2))
        rows.append(Row("peak RSS, two workers / sink", f"{rss} / {two.rss_mb['sink']:,.0f} MB"))


def phase_profile(args: argparse.Namespace, lines: list[bytes], work: Path) -> None:
    with EmbeddedBroker() as broker:
        sent, messages, _ = preload(broker.bootstrap, "p.", lines[: args.profile_events], Batching())
        sampled = drain(broker, "p.", "p1.", messages, sent, work / "profile", workers=1, sampled=True)
    print("\n".join(drain_lines("batches, one worker, sampled every 5 ms (load_tests/sampled.py)", sampled)))
    print("where the worker's time goes:")
    print("\n".join(where_time_goes(sampled.profile)))


def phase_single(args: argparse.Namespace, lines: list[bytes], work: Path, rows: list[Row]) -> None:
    with EmbeddedBroker() as broker:
        sent, messages, produced = preload(broker.bootstrap, "s.", lines[: args.single_events or args.events], SINGLE)
        print(f"pre-loaded {sent:,} events one per message ({fmt_rate(produced)} events/s)")
        ceil = asyncio.run(ceiling(broker.bootstrap, "s.", sent))
        noop = noop_ceiling(broker.bootstrap, "s.", sent)
        print(f"aiokafka ceiling {fmt_rate(ceil)} events/s; faust no-op agent {fmt_rate(noop or 0)} messages/s")
        single = drain(broker, "s.", "s1.", messages, sent, work / "single", workers=1)
    print("\n".join(drain_lines("one event per message, one worker", single)))
    ratio = f"{single.rate / noop:.2f}" if noop else "(no-op run too short)"
    rows.append(Row("one event per message: one worker + sink", f"{fmt_rate(single.rate)} ev/s",
                    f"faust no-op {fmt_rate(noop or 0)}", ratio, "≥ 0.7", verdict(single.rate / noop >= 0.7) if noop else ""))  # fmt: skip
    rows.append(Row("  the worker alone", f"{fmt_rate(single.worker_rate)} ev/s", "",
                    f"{single.worker_rate / noop:.2f}" if noop else ""))  # fmt: skip


def phase_fresh(args: argparse.Namespace, work: Path, rows: list[Row]) -> None:
    runs: list[tuple[int, str, dict[str, str]]] = [(int(x), "default windows", {}) for x in args.rate.split(",")]
    if args.fresh_windows:
        stage_s, sink_s = args.fresh_windows.split("/")
        tuned = {"REELROI_KAFKA_BATCH_WITHIN_S": stage_s, "REELROI_SINK_BATCH_WITHIN_S": sink_s}
        runs.append((runs[0][0], f"windows {stage_s} s, sink {sink_s} s", tuned))
    for n, (rate, windows, env) in enumerate(runs):
        with EmbeddedBroker() as broker:
            fresh = freshness(broker.bootstrap, work / f"fresh-{n}", rate, args.fresh_seconds, args.fresh_workers, env)
        print(f"freshness, {windows}: {fresh.seconds:.0f} s at {rate:,} events/s, {fresh.achieved:,.0f} handed on")
        for what, lags in fresh.lags.items():
            print(f"  {what}: p50 {percentile(lags, 0.5):.2f} s, p99 {percentile(lags, 0.99):.2f} s, "
                  f"max {max(lags, default=float('nan')):.2f} s over {len(lags):,} ({fresh.missing[what]:,} never written)")  # fmt: skip
        report = fresh.lags["money fact"] + fresh.lags["user fact"]
        p99 = percentile(report, 0.99)
        rows.append(Row(f"freshness at {rate:,} ev/s, {args.fresh_workers} worker(s), {windows}: produce to money or user "
                        "fact written (what the ROI report reads)", f"p50 {percentile(report, 0.5):.2f} s, p99 {p99:.2f} s",
                        "", "", "p99 ≤ 2 s", verdict(p99 <= 2.0)))  # fmt: skip
        ev = fresh.lags["event log row"]
        rows.append(Row("  produce to event-log row written (router only)",
                        f"p50 {percentile(ev, 0.5):.2f} s, p99 {percentile(ev, 0.99):.2f} s"))  # fmt: skip


def phase_takeover(args: argparse.Namespace, work: Path, rows: list[Row]) -> None:
    for behind in (int(x) for x in args.takeover_events.split(",")):
        with EmbeddedBroker() as broker:
            tk = takeover(broker.bootstrap, work / f"takeover-{behind}", behind, args.trickle)
        worst = max(tk.to_user_fact.values(), default=float("nan"))
        loads = ", ".join(f"{s} {n:.0f} in {sec:.2f} s" for s, (n, sec) in sorted(tk.loads.items()) if n)
        print(f"takeover, {tk.history:,} events of history: the killed worker held user partitions {tk.held} "
              f"({tk.held_share:.0%}, {tk.held_keys:,.0f} users, {tk.held_bytes / 1e6:,.1f} MB of checkpoints)")  # fmt: skip
        print(f"  kill -> the survivor's first checkpoint load {tk.first_load_after or float('nan'):.1f} s; "
              f"its loads after the kill: {loads}")  # fmt: skip
        print(f"  kill -> first user/money fact per lost partition: "
              f"{', '.join(f'{p}: {s:.1f} s' for p, s in sorted(tk.to_user_fact.items()))}; first event-log fact: "
              f"{', '.join(f'{p}: {s:.1f} s' for p, s in sorted(tk.to_event_fact.items()))}")  # fmt: skip
        print(f"  peak RSS before the kill: {', '.join(f'{k} {v:,.0f} MB' for k, v in tk.rss_mb.items())}")
        load_s = sum(sec for _, sec in tk.loads.values())
        rows.append(Row(f"takeover: kill -9 of a worker, {tk.history * tk.held_share:,.0f} events behind its partitions;"
                        " kill to their first fact from the survivor",
                        f"{worst:.1f} s (first load {tk.first_load_after or float('nan'):.1f} s, loads {load_s:.2f} s)",
                        "", "", "≤ 10 s at 5M", verdict(worst <= 10.0) if behind >= 5_000_000 else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the drains (batched, two workers)")
    parser.add_argument("--single-events", type=int, help="events of the one-per-message drain (default --events)")
    parser.add_argument("--rate", default="10000", help="events/s of the freshness runs (comma-separated)")
    parser.add_argument("--fresh-seconds", type=int, default=60)
    parser.add_argument("--fresh-workers", type=int, default=1)
    parser.add_argument(
        "--fresh-windows",
        default="0.1/0.2",
        help="one more freshness run at the first rate with these batch windows, stages/sink seconds ('' for none;"
        " defaults REELROI_KAFKA_BATCH_WITHIN_S 0.5, REELROI_SINK_BATCH_WITHIN_S 1)",
    )
    parser.add_argument(
        "--takeover-events", default="1000000", help="history behind the killed worker's partitions, comma-separated"
    )
    parser.add_argument("--trickle", type=int, default=2000, help="events/s flowing during the takeover")
    parser.add_argument("--profile-events", type=int, default=200_000, help="events of the sampled drain")
    parser.add_argument(
        "--phases", default="batched,two,profile,single,fresh,takeover", help="which phases to run (comma-separated)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases, samples)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    command = " ".join([".venv/bin/python load_tests/bench_stream.py", *sys.argv[1:]])
    work = Path(tempfile.mkdtemp(prefix="reelroi-stream-bench-"))
    began = time.time()
    rows: list[Row] = []
    print(f"work directory {work}")
    lines = list(generate(GeneratorConfig(seed=7, days=3, events=args.events)))
    print(f"generated {len(lines):,} events ({sum(map(len, lines)) / len(lines):.0f} bytes a line on average)")
    if "batched" in phases:
        phase_batched(args, lines, work, rows)
    if "profile" in phases:
        phase_profile(args, lines, work)
    if "single" in phases:
        phase_single(args, lines, work, rows)
    if "fresh" in phases:
        phase_fresh(args, work, rows)
    if "takeover" in phases:
        phase_takeover(args, work, rows)
    elapsed = time.time() - began
    table = ["| measure | figure | ceiling / baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    table += [f"| {r.what} | {r.figure} | {r.ceiling} | {r.ratio} | {r.target} | {r.met} |" for r in rows]
    print("\n" + "\n".join(table))
    print(f"\nran in {elapsed / 60:.1f} min")
    print("\n```markdown")
    print(
        f"Measured on this machine ({os.cpu_count()} cores), all in one run of {elapsed / 60:.0f} min:\n`{command}`\n"
    )
    print("\n".join(table))
    print("```")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
