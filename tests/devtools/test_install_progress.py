"""The README's test command says what it is doing while it installs (a first install
takes minutes: silence looks like a hang)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_scripts_test_shows_progress_while_installing(tmp_path):
    # A fresh checkout: no .venv yet.
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("src", "scripts"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    process = subprocess.Popen(
        ["bash", "scripts/test", "--collect-only", "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, ended below with pip in it
    )
    lines: list[tuple[float, str]] = []
    started = time.monotonic()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Watch the first 60 s of the install (all of it takes minutes): enough to see
        # whether it is talking.
        reader.join(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert lines, "nothing printed in the first 60 s"
    assert lines[0][0] < 15, lines[:3]
    collecting = [text for _, text in lines if text.strip().startswith("collecting ")]
    assert len(collecting) >= 5, lines
    times = [0.0] + [at for at, _ in lines] + [min(60.0, time.monotonic() - started)]
    longest_silence = max(b - a for a, b in itertools.pairwise(times))
    assert longest_silence < 45, lines  # a large wheel may take a while to download
