"""Fixtures of the local-model run: the suite's PostgreSQL, and a real llama-server on 127.0.0.1.

Not collected by ``make test`` (``testpaths`` is ``tests``); ``make test-local-model`` runs it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import pg_url, unique
from tests.processes import free_port

__all__ = ["CONTEXT", "llama_server", "pg_url", "unique"]

ROOT = Path(__file__).parents[1]
CONTEXT = 2048
"""The server's context, far below the default BACKTRACK_CONTEXT_TOKENS, as on a small local setup."""


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The OpenAI-compatible base URL of llama-server serving SmolLM2-135M-Instruct, greedy."""
    built = subprocess.run(["bash", str(ROOT / "tests_local" / "setup.sh")], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.fail(f"setup failed:\n{built.stderr[-3000:]}", pytrace=False)
    server, model = built.stdout.split()
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-c", str(CONTEXT),
             "--jinja", "--temp", "0", "--seed", "1", "-t", "2", "--parallel", "1"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama-server exited: {log.read_text()[-3000:]}", pytrace=False)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama-server never became healthy: {log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
