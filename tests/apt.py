"""Installing a Debian package the suite needs (PgBouncer, Chromium) on first use.

A machine where the install fails fails the tests that need it, with apt's own reason,
rather than skipping them: ``make test`` must work, or say why not, on a fresh machine.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

__all__ = ["apt_install"]

_SEARCH = "/usr/sbin:/usr/bin"


def apt_install(package: str, binary: str) -> str:
    """The path of ``binary``, after ``apt-get install -y package`` if it is not there yet."""
    found = shutil.which(binary) or shutil.which(binary, path=_SEARCH)
    if found:
        return found
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"could not install {package} ({' '.join(step)}): {exc}", pytrace=False)
        if done.returncode != 0:
            pytest.fail(f"could not install {package} ({' '.join(step)}): {done.stderr[-1500:]}", pytrace=False)
    found = shutil.which(binary, path=_SEARCH)
    if not found:
        pytest.fail(f"apt-get installed {package} but no {binary} binary was found", pytrace=False)
    return found
