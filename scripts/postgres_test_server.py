"""A throwaway PostgreSQL server on loopback for the tests of ``sentiment tune --storage postgresql://...``.

    python3 scripts/postgres_test_server.py start DIR [PORT]   # prints its URL; exit 1 when it cannot
    python3 scripts/postgres_test_server.py stop DIR

Uses the server binaries of Debian's ``postgresql`` package (/usr/lib/postgresql/N/bin) or those on PATH. A
new cluster goes into DIR (trust authentication, listening on 127.0.0.1 only, its socket in DIR). PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user the package creates. Standard
library only: ``.ci/run`` calls it before the virtual environment exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (the newest Debian version first), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(directory: Path, port: int | None = None) -> str:
    """Start a server with its cluster in ``directory``; its URL. RuntimeError with the reason otherwise."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            shutil.chown(directory, "postgres", "postgres")
        except (LookupError, OSError) as exc:
            raise RuntimeError(f"cannot hand {directory} to the postgres user: {exc}") from None
    port = port or _free_port()
    data, log = directory / "data", directory / "server.log"
    steps = [
        [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N"],
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {directory} -F",
            "start",
        ],
    ]
    for command in steps:
        done = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{Path(command[0]).name} failed: {tail[0]}")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop(directory: Path) -> None:
    bin_dir = binaries()
    if bin_dir is not None and (directory / "data").is_dir():
        command = [str(bin_dir / "pg_ctl"), "-D", str(directory / "data"), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(command), capture_output=True, timeout=60)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(argv[1]).resolve()
    if argv[0] == "stop":
        stop(directory)
        return 0
    try:
        print(start(directory, int(argv[2]) if len(argv) > 2 else None))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"postgres_test_server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
