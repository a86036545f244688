"""tests/python/programs.py: a missing program is one sentence, never a Python error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PROJECT_DIR
from programs import PACKAGES, exit_without_program, require_program

SENTENCE = (
    "clv-no-such-program is not on PATH: Debian's package clv-no-such-package brings it and "
    "`make test` installs it (as root; otherwise run `sudo apt-get install clv-no-such-package`)"
)


def test_a_missing_program_fails_the_test_with_one_sentence() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        require_program("clv-no-such-program", package="clv-no-such-package")
    assert failed.value.msg == SENTENCE
    assert failed.value.pytrace is False  # the sentence alone, no traceback


def test_a_missing_program_stops_a_benchmark_with_the_same_sentence() -> None:
    with pytest.raises(SystemExit) as exited:
        exit_without_program("clv-no-such-program", package="clv-no-such-package")
    assert exited.value.code == SENTENCE


def test_a_program_on_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "redis-server"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_program("redis-server") == str(program)
    assert exit_without_program("redis-server") == str(program)


def test_a_test_run_shows_the_sentence_and_no_python_error(tmp_path: Path) -> None:
    (tmp_path / "test_needs_redis.py").write_text(
        textwrap.dedent(
            """
            from programs import require_program

            def test_publish():
                require_program("redis-server")
            """
        )
    )
    completed = subprocess.run(
        # -rN: no short summary, which repeats the message (untruncated where CI is set).
        [sys.executable, "-m", "pytest", "-q", "-rN", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        # PATH without redis-server; programs.py importable as it is for the real tests.
        env={**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    sentence = (
        "redis-server is not on PATH: Debian's package redis-server brings it and `make test` "
        "installs it (as root; otherwise run `sudo apt-get install redis-server`)"
    )
    # The failure's whole body is the sentence, once: no traceback, no chained exception.
    assert re.search(rf" test_publish _+\n{re.escape(sentence)}\n1 failed", completed.stdout), (
        completed.stdout
    )
    assert completed.stdout.count("redis-server is not on PATH") == 1, completed.stdout
    assert "Error" not in completed.stdout, completed.stdout


def test_the_packages_are_those_make_test_installs() -> None:
    script = (PROJECT_DIR / "tests" / "system_deps.sh").read_text()
    checked = dict(re.findall(r"command -v (\S+) >/dev/null \|\| echo (\S+)", script))
    assert checked == PACKAGES
