"""Run a reelroi command under a sampling profiler of every thread; write where the time went at exit.

    python load_tests/sampled.py OUT.json worker --bootstrap HOST:PORT ...

cProfile sees only the thread that started it, and a worker does its work in
``asyncio.to_thread`` threads. Here a daemon thread takes
``sys._current_frames()`` every ``SAMPLED_INTERVAL_S`` (default 0.005) and
counts, per thread (numbers stripped from its name), the innermost function
(self) and every function on the stack once (inclusive). A sample whose
innermost frame is a known wait (a selector, a lock, an idle executor
thread) is counted as idle. The sampler needs the GIL, so a thread that holds
it in one long C call is seen late: the counts are shares of samples, not
exact CPU. OUT gets ``{thread: {"samples", "idle", "self", "inclusive",
"seconds"}}``.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INTERVAL_S = float(os.environ.get("SAMPLED_INTERVAL_S", "0.005"))
START_FILE = os.environ.get("SAMPLED_START_FILE", "")
# innermost frames that mean "waiting", by (file name ending, function)
IDLE = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("thread.py", "_worker"),  # an idle executor thread blocks in work_queue.get (C), below _worker
    ("queue.py", "get"),
    ("socketserver.py", "serve_forever"),
}


def _label(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{code.co_name} ({path}:{code.co_firstlineno})"


class Sampler:
    def __init__(self) -> None:
        self.samples: Counter[str] = Counter()
        self.idle: Counter[str] = Counter()
        self.self_: dict[str, Counter[str]] = {}
        self.inclusive: dict[str, Counter[str]] = {}
        self.started = time.monotonic()
        self.me = 0  # the sampler's own thread, skipped

    def run(self) -> None:
        self.me = threading.get_ident()
        while START_FILE and not os.path.exists(START_FILE):
            time.sleep(INTERVAL_S)
        self.started = time.monotonic()
        while True:
            time.sleep(INTERVAL_S)
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == self.me:
                    continue
                thread = re.sub(r"[-_]?\d+", "", names.get(ident, "unknown")) or "unknown"
                self.samples[thread] += 1
                code = frame.f_code
                if (os.path.basename(code.co_filename), code.co_name) in IDLE:
                    self.idle[thread] += 1
                    continue
                self.self_.setdefault(thread, Counter())[_label(frame)] += 1
                seen = set()
                f: FrameType | None = frame
                while f is not None:
                    label = _label(f)
                    if label not in seen:
                        seen.add(label)
                        self.inclusive.setdefault(thread, Counter())[label] += 1
                    f = f.f_back

    def dump(self, out: Path) -> None:
        seconds = time.monotonic() - self.started
        report = {
            thread: {
                "samples": n,
                "idle": self.idle[thread],
                "seconds": seconds,
                "interval_s": INTERVAL_S,
                "self": dict(self.self_.get(thread, Counter()).most_common(40)),
                "inclusive": dict(self.inclusive.get(thread, Counter()).most_common(80)),
            }
            for thread, n in self.samples.items()
        }
        out.write_text(json.dumps(report, indent=1))


def main() -> None:
    out = Path(sys.argv[1])
    sampler = Sampler()
    threading.Thread(target=sampler.run, name="sampler", daemon=True).start()
    atexit.register(sampler.dump, out)
    from reelroi.cli import main as cli

    raise SystemExit(cli(sys.argv[2:]))


if __name__ == "__main__":
    main()
