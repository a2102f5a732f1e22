"""Processes of the benchmarks: helpers that serve (emulators, the bot) and commands that are
measured (wall time and peak resident memory of that very process, from `wait4`).

Every child is started by us, known by its pid, and stopped by that pid; every wait has a
deadline.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


def env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without AKSDIAG_/SLACK_/REDIS_ settings, plus extra."""
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AKSDIAG_", "SLACK_", "REDIS_", "KUBECONFIG"))
    }
    out["PYTHONPATH"] = str(ROOT)
    out.update(extra)
    return out


class Helper:
    """A serving child that prints one JSON line when ready and stops when its stdin closes
    (or at `stop()`: SIGTERM, then SIGKILL after a grace period)."""

    def __init__(
        self,
        args: list[str],
        *,
        log: Path,
        ready_timeout: float = 300.0,
        environ: dict[str, str] | None = None,
        ready_line: bool = True,
        cpus: set[int] | None = None,
    ) -> None:
        self.log = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if ready_line else self._log,
            stderr=self._log,
            cwd=ROOT,
            env=environ or env(),
        )
        if cpus:
            pin(self.proc.pid, cpus)
        self.info: dict[str, Any] = {}
        if ready_line:
            assert self.proc.stdout is not None
            line = _readline(self.proc.stdout, ready_timeout)
            if not line:
                self.stop()
                raise BenchError(f"{' '.join(args[:4])} did not start: see {log}")
            self.info = json.loads(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        return _rss_kb(self.proc.pid) / 1024

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(grace / 2)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(grace / 2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._log.close()

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pin(pid: int, cpus: set[int]) -> None:
    """Keep every thread of a process on these CPUs (threads it starts later inherit it)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)
    except OSError:
        pass  # it ended already


@contextmanager
def split_cpus() -> Iterator[tuple[set[int], set[int]]]:
    """(the system under test's CPUs, the harness's): on a machine with 2+ CPUs the measured
    server gets CPU 0 and this process, with everything it starts meanwhile (load generator
    threads, emulators, valkey), the others, as a load generator runs on another machine.
    With one CPU both share it."""
    every = os.sched_getaffinity(0)
    sut = {min(every)}
    harness = (every - sut) or every
    os.sched_setaffinity(0, harness)
    try:
        yield sut if harness != every else every, harness
    finally:
        os.sched_setaffinity(0, every)


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return buf
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0]
        return b""
    finally:
        sel.close()


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class Measured:
    """One finished command: wall seconds, peak RSS (MB) per process, exit status, output."""

    seconds: float
    peak_mb: list[float]
    returncodes: list[int]
    stdout: bytes = b""
    capped: str = ""  # why the command was stopped early, if it was
    stderr: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return not self.capped and all(rc == 0 for rc in self.returncodes)


def _wait4(proc: subprocess.Popen[bytes]) -> float:
    """Reap a child ourselves to read its own rusage; its peak RSS in MB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024  # kilobytes on Linux


def measure(
    args: list[str],
    *,
    timeout: float,
    environ: dict[str, str] | None = None,
    stdout_limit: int = 1 << 20,
) -> Measured:
    """Run one command to its end; wall time and its own peak RSS."""
    return pipeline([args], timeout=timeout, environ=environ, stdout_limit=stdout_limit)


def pipeline(
    commands: list[list[str]],
    *,
    timeout: float,
    max_rss_mb: float = 0.0,
    environ: dict[str, str] | None = None,
    stdout_limit: int = 1 << 20,
) -> Measured:
    """Run `a | b | c`; wall time until the last exits, peak RSS of each process. Stops the
    whole pipeline (SIGKILL, by pid) when it runs past `timeout` or, with `max_rss_mb`, when
    the processes together hold more memory than that."""
    procs: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    prev = None
    for i, args in enumerate(commands):
        last = i == len(commands) - 1
        p = subprocess.Popen(
            args,
            stdin=prev,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if last else subprocess.DEVNULL,
            cwd=ROOT,
            env=environ or env(),
        )
        if prev is not None:
            prev.close()  # the next process owns the read end now
        prev = p.stdout
        procs.append(p)
    out, err = bytearray(), bytearray()
    capped = ""
    stop = threading.Event()

    def drain(stream: BinaryIO, into: bytearray) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            if len(into) < stdout_limit:
                into.extend(chunk[: stdout_limit - len(into)])

    last_proc = procs[-1]
    readers = [
        threading.Thread(target=drain, args=(last_proc.stdout, out), daemon=True),
        threading.Thread(target=drain, args=(last_proc.stderr, err), daemon=True),
    ]
    for t in readers:
        t.start()
    peaks_seen = [0.0] * len(procs)

    def watch() -> None:
        nonlocal capped
        while not stop.wait(0.2):
            rss = [_rss_kb(p.pid) / 1024 for p in procs]
            for i, r in enumerate(rss):
                peaks_seen[i] = max(peaks_seen[i], r)
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                capped = f"stopped after {elapsed:.0f} s (time cap)"
            elif max_rss_mb and sum(rss) > max_rss_mb:
                capped = f"stopped at {sum(rss) / 1024:.1f} GB resident (memory cap)"
            if capped:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    peaks = [_wait4(p) for p in procs]
    seconds = time.monotonic() - started
    stop.set()
    watcher.join()
    for t in readers:
        t.join(5)
    peaks = [max(a, b) for a, b in zip(peaks, peaks_seen, strict=True)]
    return Measured(seconds, peaks, [p.returncode for p in procs], bytes(out), capped, bytes(err))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


__all__ = [
    "BIN",
    "PYTHON",
    "ROOT",
    "BenchError",
    "Helper",
    "Measured",
    "cpu_seconds",
    "env",
    "free_port",
    "measure",
    "memory_available_mb",
    "pin",
    "pipeline",
    "split_cpus",
]
