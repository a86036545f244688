"""Start a real dynalite (a DynamoDB-compatible server on Node.js) on a free loopback port.

The package is pinned in tests/dynalite/package.json; `make test` installs it with
``npm ci --prefix tests/dynalite`` (and Debian's nodejs and npm first). The data lives in the
server's memory: restart() gives an empty server on the same port. pause() and resume()
freeze the process (SIGSTOP/SIGCONT), so a client sees a server that accepts connections but
never answers, and finds its data intact afterwards. A client killed mid-request leaves it
serving, as DynamoDB does (tests/dynalite/survive_aborted_requests.js).

Used by tests/python/test_dynamodb_publish.py and benchmarks/dynamodb_publish.py; it imports
nothing from pytest so the benchmark can use it too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from programs import ProgramMissing, find_program

PROJECT_DIR = Path(__file__).resolve().parents[2]
PACKAGE_DIR = PROJECT_DIR / "tests" / "dynalite"
CLI = PACKAGE_DIR / "node_modules" / "dynalite" / "cli.js"
# dynalite 4.0.0 dies when a client is killed mid-request; this keeps it serving (see the file).
PRELOAD = PACKAGE_DIR / "survive_aborted_requests.js"
INSTALL_HINT = (
    "`make test` installs it with `npm ci --prefix tests/dynalite` "
    "(dynalite 4.0.0, pinned in tests/dynalite/package-lock.json)"
)


class DynaliteMissing(RuntimeError):
    """node or the dynalite package is not installed; the message says how to install it."""


def command() -> list[str]:
    """The argv that starts dynalite, without the port; DynaliteMissing when it cannot run."""
    try:
        node = find_program("node")
    except ProgramMissing as missing:
        raise DynaliteMissing(str(missing)) from None
    if not CLI.is_file():
        raise DynaliteMissing(f"{CLI.relative_to(PROJECT_DIR)} is missing: {INSTALL_HINT}")
    return [node, "--require", str(PRELOAD), str(CLI)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dynalite:
    """One dynalite process on 127.0.0.1; restartable on the same port (with empty tables).

    create_table_ms is how long a new table stays CREATING (dynalite's default is 500 ms;
    real DynamoDB takes seconds), so callers exercise their wait for ACTIVE.
    """

    def __init__(self, create_table_ms: int = 100, port: int | None = None) -> None:
        self.argv = command()
        self.create_table_ms = create_table_ms
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # Its output goes to a file, not a pipe nobody reads (a full pipe would block it).
        descriptor, self.log_path = tempfile.mkstemp(prefix="dynalite-", suffix=".log")
        os.close(descriptor)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_seconds: float = 20.0) -> Dynalite:
        argv = [
            *self.argv,
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--createTableMs", str(self.create_table_ms)),
            *("--deleteTableMs", str(self.create_table_ms)),
            *("--updateTableMs", str(self.create_table_ms)),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_seconds
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dynalite exited with code {self.process.returncode}: {self.output()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"dynalite did not listen on port {self.port} within {timeout_seconds:g} s: "
                    f"{self.output()}"
                )
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-2000:].strip()

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> Dynalite:
        """Stop and start again on the same port: the server comes back empty."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        os.unlink(self.log_path)

    def __enter__(self) -> Dynalite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
