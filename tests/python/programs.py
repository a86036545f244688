"""Find the programs the tests start (redis-server, chromium, java, node), or say which is missing.

`make test` installs them (tests/system_deps.sh, the same Debian packages as PACKAGES), so a
missing one is a broken set-up: a test fails with one sentence naming the program, the
Debian package that brings it and the fix, never with a Python error from a None path.

require_program() is for tests (pytest.fail), exit_without_program() for the benchmarks
(SystemExit with the same sentence); find_program() imports nothing from pytest, so
tests/python/dynalite.py and the benchmarks can use it too.
"""

from __future__ import annotations

import shutil

# Program -> the Debian package that brings it; tests/system_deps.sh checks the same pairs.
PACKAGES = {
    "redis-server": "redis-server",
    "chromium": "chromium",
    "java": "openjdk-17-jre-headless",
    "node": "nodejs",
    "npm": "npm",
}


class ProgramMissing(RuntimeError):
    """A program is not on PATH; the message is the one sentence a user sees."""


def missing_sentence(program: str, package: str | None = None) -> str:
    package = package or PACKAGES[program]
    return (
        f"{program} is not on PATH: Debian's package {package} brings it and `make test` "
        f"installs it (as root; otherwise run `sudo apt-get install {package}`)"
    )


def find_program(program: str, package: str | None = None) -> str:
    """The program's path on PATH; ProgramMissing with the sentence when it is not there."""
    path = shutil.which(program)
    if path is None:
        raise ProgramMissing(missing_sentence(program, package))
    return path


def require_program(program: str, package: str | None = None) -> str:
    """The program's path, or the test fails with the sentence (no traceback)."""
    import pytest

    try:
        return find_program(program, package)
    except ProgramMissing as missing:
        sentence = str(missing)
    # Outside the except block: pytest would print "During handling of the above exception".
    pytest.fail(sentence, pytrace=False)


def exit_without_program(program: str, package: str | None = None) -> str:
    """The program's path, or the benchmark exits with the sentence."""
    try:
        return find_program(program, package)
    except ProgramMissing as missing:
        raise SystemExit(str(missing)) from None
