"""The ``reelroi`` command as scripts and people run it: exit codes, stderr, stdin, .gz, progress.

Every test runs the installed command in a subprocess with its own chdb directory
(a process may open only one chdb directory; subprocesses are separate processes).
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "data" / "spec_example.jsonl"
REELROI = Path(sys.executable).with_name("reelroi")
EVENT_TYPES = (
    "campaign", "promotion_plan", "fx_rate", "ad_spend", "impression", "click", "redirect", "payment",
    "ad_unlock", "refund",
)  # fmt: skip


def _env() -> dict[str, str]:
    """The environment without any REELROI_* setting of the caller's (or of another test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REELROI_")}


def reelroi(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REELROI), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
    )


def reelroi_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(REELROI), *args], input=stdin, capture_output=True, env=_env(), timeout=120)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Asserts a failure reported as exactly one line on stderr, no traceback; returns that line."""
    assert proc.returncode != 0, f"expected a failure, got exit 0\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    return lines[0]


def dsn(tmp_path: Path, name: str = "db") -> str:
    return f"chdb://{tmp_path / name}"


def reports(db: str) -> dict[str, object]:
    out = {}
    for command in ("roi", "commission", "rejects"):
        proc = reelroi(command, "--db", db, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        out[command] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The reports of the SPEC example, replayed from the plain file."""
    db = dsn(tmp_path_factory.mktemp("expected"))
    proc = reelroi("replay", str(EXAMPLE), "--db", db)
    assert proc.returncode == 0, proc.stderr
    result = reports(db)
    assert result["roi"], "the SPEC example gives ROI rows"
    return result


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    line = one_error_line(reelroi("replay", str(tmp_path / "nope.jsonl"), "--db", dsn(tmp_path)))
    assert "nope.jsonl" in line


def test_missing_file_among_good_ones_replaces_nothing(tmp_path, expected):
    db = dsn(tmp_path)
    assert reelroi("replay", str(EXAMPLE), "--db", db).returncode == 0
    one_error_line(reelroi("replay", str(EXAMPLE), str(tmp_path / "nope.jsonl"), "--db", db))
    assert reports(db) == expected  # checked before anything was replaced


def test_bad_click_window(tmp_path):
    line = one_error_line(reelroi("replay", str(EXAMPLE), "--db", dsn(tmp_path), "--click-window", "abc"))
    assert "abc" in line


def test_bad_view_window(tmp_path):
    one_error_line(reelroi("replay", str(EXAMPLE), "--db", dsn(tmp_path), "--view-window", "24x"))


def test_bad_time_zone(tmp_path):
    line = one_error_line(reelroi("replay", str(EXAMPLE), "--db", dsn(tmp_path), "--tz", "Mars/Base"))
    assert "Mars/Base" in line


def test_bad_currency(tmp_path):
    one_error_line(reelroi("replay", str(EXAMPLE), "--db", dsn(tmp_path), "--currency", "usd"))


def test_unsupported_dsn(tmp_path):
    one_error_line(reelroi("roi", "--db", "ftp://example.com/db", "--format", "json"))


@pytest.mark.parametrize("command", ["replay", "roi"])
def test_unreachable_server_fails_fast_with_one_line(tmp_path, command):
    args = ["replay", str(EXAMPLE)] if command == "replay" else ["roi", "--format", "json"]
    started = time.monotonic()
    proc = reelroi(*args, "--db", "http://reelroi:s3cret@127.0.0.1:1/db", timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"took {elapsed:.1f}s to give up on a closed port"
    assert "s3cret" not in proc.stderr + proc.stdout, "the password is shown"
    line = one_error_line(proc)
    assert "127.0.0.1:1" in line


def test_unreachable_server_fails_fast_and_clearly(tmp_path):
    """The part of the above that holds today: fast, non-zero, no traceback, no password, one reelroi line."""
    started = time.monotonic()
    proc = reelroi("roi", "--format", "json", "--db", "http://reelroi:s3cret@127.0.0.1:1/db", timeout=60)
    assert time.monotonic() - started < 15
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("reelroi roi: error:")]
    assert len(ours) == 1 and "127.0.0.1:1" in ours[0], proc.stderr
    assert proc.stdout == ""


# --------------------------------------------------------------------------- schema


def test_schema_has_a_def_per_event_type():
    proc = reelroi("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert set(EVENT_TYPES) <= set(schema["$defs"]), sorted(schema["$defs"])
    for name in EVENT_TYPES:
        definition = schema["$defs"][name]
        assert isinstance(definition, dict) and definition, name


# --------------------------------------------------------------------------- inputs


def test_replay_reads_stdin(tmp_path, expected):
    db = dsn(tmp_path)
    proc = reelroi("replay", "-", "--db", db, stdin=EXAMPLE.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert reports(db) == expected


def test_replay_reads_gzip_from_stdin(tmp_path, expected):
    db = dsn(tmp_path)
    proc = reelroi_bytes("replay", "-", "--db", db, stdin=gzip.compress(EXAMPLE.read_bytes()))
    assert proc.returncode == 0, proc.stderr
    assert reports(db) == expected


def test_replay_reads_gz_files(tmp_path, expected):
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress(EXAMPLE.read_bytes()))
    db = dsn(tmp_path)
    proc = reelroi("replay", str(gz), "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert reports(db) == expected


def test_replay_of_a_file_split_in_two_plain_and_gz(tmp_path, expected):
    lines = EXAMPLE.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    first.write_bytes(b"".join(lines[:7]))
    second.write_bytes(gzip.compress(b"".join(lines[7:])))
    db = dsn(tmp_path)
    proc = reelroi("replay", str(first), str(second), "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert reports(db) == expected


def test_corrupt_gz_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.jsonl.gz"
    bad.write_bytes(gzip.compress(EXAMPLE.read_bytes())[:40])
    line = one_error_line(reelroi("replay", str(bad), "--db", dsn(tmp_path)))
    assert "broken.jsonl.gz" in line


# --------------------------------------------------------------------------- progress


def _generated_file(tmp_path: Path) -> Path:
    path = tmp_path / "generated.jsonl"
    proc = subprocess.run(
        [str(REELROI), "generate", "--seed", "7", "--events", "20000", "--out", str(path)],
        capture_output=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return path


def test_no_progress_when_stderr_is_piped(tmp_path):
    path = _generated_file(tmp_path)
    proc = reelroi("replay", str(path), "--db", dsn(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert "events/s" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("replayed "), proc.stderr  # only the summary


def test_progress_on_a_terminal(tmp_path):
    """The other side of the test above: on a terminal the progress line is drawn."""
    path = _generated_file(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(REELROI), "replay", str(path), "--db", dsn(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=_env(),
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    poller = select.poll()  # not select.select: this process may already hold fds above 1024
    poller.register(master, select.POLLIN)
    try:
        while time.monotonic() < deadline:
            if poller.poll(500):
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=60) == 0, seen.decode(errors="replace")
    finally:
        os.close(master)
    text = seen.decode(errors="replace")
    assert "events/s" in text and "\r" in text, text
    assert "replayed " in text


def test_the_default_relative_chdb_directory_works(tmp_path):
    """The default DSN is relative (chdb://./.reelroi/chdb): it lands under the working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELROI_")}
    done = subprocess.run(
        [sys.executable, "-m", "reelroi.cli", "replay", str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".reelroi" / "chdb").is_dir()
    roi = subprocess.run(
        [sys.executable, "-m", "reelroi.cli", "roi", "--format", "json"], cwd=tmp_path, env=env, capture_output=True
    )
    assert roi.returncode == 0 and b'"cA"' in roi.stdout


# --------------------------------------------------------------------------- spill directory and odd names


def test_a_spill_directory_clickhouse_would_read_as_a_pattern_is_refused(tmp_path, expected):
    """ClickHouse's file() expands * ? { } [ ] in a path: the rows files would read as nothing and the replay
    would report success with empty tables; a list of files in braces cannot have a comma in its directory.
    Both are refused before any input is read, and what was there stays."""
    db = dsn(tmp_path)
    assert reelroi("replay", str(EXAMPLE), "--db", db).returncode == 0
    for name in ("spill{a,b}", "spill,x"):
        env = {**_env(), "REELROI_REPLAY_SPILL_DIR": str(tmp_path / name)}
        proc = subprocess.run(
            [str(REELROI), "replay", str(EXAMPLE), "--db", db], capture_output=True, text=True, env=env, timeout=120
        )
        assert "REELROI_REPLAY_SPILL_DIR" in one_error_line(proc), name
        assert reports(db) == expected


def test_an_input_name_that_is_not_utf8_is_kept_in_origins(tmp_path):
    line = (EXAMPLE.read_bytes().splitlines()[0]) + b"\n"
    name = os.fsencode(tmp_path) + b"/f\xff.jsonl"
    with open(name, "wb") as handle:
        handle.write(line + line + b"not json\n")  # a duplicate and a rejection: rows that carry the origin
    db = dsn(tmp_path)
    proc = subprocess.run(
        [os.fsencode(REELROI), b"replay", name, b"--db", db.encode()], capture_output=True, env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    rejects = json.loads(reelroi("rejects", "--db", db, "--format", "json").stdout)
    assert rejects == {"rejected": {"invalid_json": 1}, "duplicates": 1}, rejects
