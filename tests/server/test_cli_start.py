"""``threadline serve`` as a newcomer first meets it: busy ports, the banner, --version."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import free_port, free_ports, start_server, stop_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("busy", ["--port", "--grpc-port"])
def test_a_busy_port_is_one_line_naming_the_flag_before_anything_is_made(tmp_path, busy):
    with socket.socket() as taken:  # another server, e.g. a collector on 4317
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        http_port, grpc_port = free_ports(2)
        ports = {"--port": str(http_port), "--grpc-port": str(grpc_port), busy: str(port)}
        data = tmp_path / "data"
        result = _run("serve", "--data-dir", str(data), *[x for kv in ports.items() for x in kv])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0]
    assert f"Choose another with {busy} " in lines[0]
    # Nothing was created or shown: no key to lose, no store.
    assert "tl_" not in result.stdout
    assert not data.exists()


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert re.fullmatch(
        r"threadline \d+\.\d+\.\d+\S*, SQLite \d+\.\d+\.\d+ \((pysqlite3|sqlite3)\)\n",
        result.stdout,
    ), result.stdout


def test_serve_help_and_readme_agree_on_what_workers_give():
    help_text = " ".join(_run("serve", "--help").stdout.split())
    readme = " ".join((ROOT / "README.md").read_text().replace("`", "").split())
    readme = readme.replace("threadline serve --workers", "--workers")
    claim = "--workers 2 starts two ingest worker processes, one per core"
    assert claim in help_text and claim in readme


def test_banner_and_readme_install_the_sdk_from_the_checkout_with_opentelemetry_only(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        banner = server.log()
    finally:
        stop_server(server)
    readme = (ROOT / "README.md").read_text()
    # No package of that name can be installed.
    assert not re.search(r"pip install threadline\b(?![\[/.])", banner + readme)
    # The banner names this checkout, and a wheel built by one command.
    assert f"pip install {ROOT}\n" in banner
    wheel_command = re.search(r"pip wheel --no-deps -w dist (\S+)", banner)
    assert wheel_command is not None and wheel_command.group(1) == str(ROOT), banner
    assert "pip wheel --no-deps -w dist ." in readme

    # That command's wheel: the SDK depends on OpenTelemetry only, and is typed.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("threadline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    always = [r for r in requires if "extra ==" not in r]
    assert always and all(r.startswith("opentelemetry-") for r in always), always
    assert "threadline/py.typed" in names


def test_banner_names_the_checkout_a_plain_pip_install_came_from(tmp_path):
    # The README installs with `pip install '.[server]'`: not editable, so the code runs
    # from site-packages, and the banner finds the checkout through pip's record of it.
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    log = tmp_path / "log.txt"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "threadline.server",
                "serve",
                "--port",
                str(free_port()),
                "--grpc-port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            # Only the installed copy on the path, not the checkout's src/.
            env={**os.environ, "PYTHONPATH": str(target), "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 30
            while "Trace your app" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert f"pip install {ROOT}\n" in log.read_text(), log.read_text()
