"""Where `clv run` may write and what it may delete: the output folder and the warehouse.

The output folder is replaced as a whole on every run, so the tool only ever replaces
a folder it created itself. Every output folder holds a marker file, `.clv-output`,
listing the files the tool wrote there; a folder is the tool's own while it holds
nothing else. The checks here run before any work starts and raise `RefusedPath`
with one sentence for the user: what is wrong, where, and what to do instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from clv.errors import InputRefused

MARKER = ".clv-output"
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
SHOWN_NAMES = 3


class RefusedPath(InputRefused):
    """A path the run must not write to or read from, phrased as one sentence."""


def write_marker(folder: Path) -> list[str]:
    """Write the marker listing every file under folder (relative, '/'-separated)."""
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if not path.is_dir() and path.name != MARKER
    )
    (folder / MARKER).write_text(json.dumps({"written_by": "clv run", "files": files}, indent=1))
    return files


def listed_files(folder: Path) -> set[str] | None:
    """The files the marker in folder lists, or None if folder carries no valid marker."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = content.get("files") if isinstance(content, dict) else None
    if not isinstance(files, list) or not all(map(is_plain_relative, files)):
        return None
    return set(files)


def is_plain_relative(name: object) -> bool:
    """Whether name is a path inside a folder: relative, '/'-separated, no '..' or '.'."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def unexpected_entries(folder: Path, listed: set[str]) -> list[str]:
    """Entries under folder the tool did not write: not listed, not the marker, not a
    folder on the way to a listed file. Symbolic links to folders are never the tool's."""
    ancestors = {
        parent.as_posix()
        for name in listed
        for parent in PurePosixPath(name).parents
        if parent != PurePosixPath(".")
    }
    unexpected = []
    for root, folders, files in os.walk(folder):
        here = Path(root).relative_to(folder)
        kept = []
        for name in sorted(folders):
            relative = (here / name).as_posix()
            if relative in ancestors and not (Path(root) / name).is_symlink():
                kept.append(name)
            else:
                unexpected.append(relative)
        folders[:] = kept
        for name in sorted(files):
            relative = (here / name).as_posix()
            if relative not in listed and relative != MARKER:
                unexpected.append(relative)
    return unexpected


def _shown(names: list[str]) -> str:
    more = len(names) - SHOWN_NAMES
    return ", ".join(names[:SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")


def check_output_folder(output: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output that is not a new folder, an empty one or one this tool wrote.

    output and inputs are resolved paths. A refusal names the path and what to do.
    """
    existing = next(path for path in (output, *output.parents) if path.exists())
    if existing != output and not existing.is_dir():
        raise RefusedPath(
            f"--output {output} cannot be created because {existing} is a file: choose a new folder"
        )
    for path in inputs:
        if path == output or output in path.parents:
            raise RefusedPath(
                f"the input {path} is inside --output {output}, which every run replaces:"
                " choose a new folder for the output"
            )
    if not output.exists():
        return
    if not output.is_dir():
        raise RefusedPath(
            f"--output {output} is an existing file, not a folder: choose a new folder"
        )
    try:
        if not any(output.iterdir()):
            return
        listed = listed_files(output)
        if listed is None:
            raise RefusedPath(
                f"--output {output} is a folder that clv did not create and it is not empty:"
                " choose a new or empty folder"
            )
        unexpected = unexpected_entries(output, listed)
    except OSError as error:
        raise RefusedPath(
            f"--output {output} cannot be read ({error.strerror}): choose a new folder"
        ) from error
    if unexpected:
        raise RefusedPath(
            f"--output {output} holds files that clv did not write ({_shown(unexpected)}):"
            " move them out or choose a new folder"
        )


def is_duckdb_file(path: Path) -> bool:
    """Whether path starts with a DuckDB database header (the magic bytes "DUCK" at 8)."""
    try:
        with path.open("rb") as file:
            header = file.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError:
        return False
    return header[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC


def refuse_a_warehouse_in_use(database: Path) -> None:
    """Another process writing the warehouse (an overlapping scheduled run) holds
    DuckDB's lock on it: said before any work, not by dbt's first connection."""
    import duckdb

    try:
        duckdb.connect(str(database), read_only=True).close()
    except duckdb.IOException as error:
        if "lock" not in str(error):
            raise
        holder = re.search(r"\(PID \d+\)", str(error))
        raise RefusedPath(
            f"the warehouse {database} is in use by another process"
            f"{' ' + holder.group(0) if holder else ''}, another clv run perhaps: run again when"
            " it is done, or give this run a warehouse of its own (CLV_DUCKDB_PATH)"
        ) from error
    except duckdb.Error:
        pass  # not a DuckDB file: is_duckdb_file has refused it already


def has_registered_model(database: Path) -> bool:
    """Whether the warehouse has a model_registry table with at least one booster."""
    import duckdb

    if not database.exists():
        return False
    try:
        connection = duckdb.connect(str(database), read_only=True)
    except duckdb.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RefusedPath(f"the warehouse {database} cannot be opened: {reason}") from error
    # Closed before dbt opens the same file: DuckDB shares a database within one
    # process only between connections of the same configuration.
    with connection:
        schemas = connection.execute(
            "select table_schema from information_schema.tables where table_name = 'model_registry'"
        ).fetchall()
        for (schema,) in schemas:
            quoted = '"' + schema.replace('"', '""') + '"'
            [(rows,)] = connection.execute(
                f"select count(*) from {quoted}.model_registry"
            ).fetchall()
            if rows:
                return True
    return False


def check_warehouse(
    database: Path, output: Path, inputs: Iterable[Path] = (), needs_model: bool = False
) -> None:
    """Refuse a warehouse path the run would destroy, misread or cannot score with.

    database, output and inputs are resolved paths; needs_model for --score-only.
    """
    where = f"the warehouse CLV_DUCKDB_PATH={database}"
    if database == output or output in database.parents:
        raise RefusedPath(
            f"{where} is inside --output {output}, which every run replaces:"
            " set CLV_DUCKDB_PATH to a file outside the output folder"
        )
    for path in inputs:
        if path == database or (path.exists() and database.exists() and path.samefile(database)):
            raise RefusedPath(
                f"{where} is one of the input files: set CLV_DUCKDB_PATH to a .duckdb file"
                " of its own"
            )
    existing = next(path for path in database.parents if path.exists())
    if not existing.is_dir():
        raise RefusedPath(
            f"{where} cannot be created because {existing} is a file:"
            " set CLV_DUCKDB_PATH to a .duckdb file in a folder"
        )
    if database.exists() and (database.is_dir() or not is_duckdb_file(database)):
        kind = "a folder" if database.is_dir() else "a file that is not a DuckDB database"
        raise RefusedPath(
            f"{where} is {kind}: set CLV_DUCKDB_PATH to a new or existing .duckdb file"
        )
    if database.is_file():
        refuse_a_warehouse_in_use(database)
    if needs_model and not has_registered_model(database):
        raise RefusedPath(f"no registered model in {database}: run without --score-only first")


def make_staging(output: Path) -> Path:
    """A new, uniquely named folder beside output to assemble the results in."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.partial-"))
    umask = os.umask(0o022)  # mkdtemp makes it private; give it a folder's usual mode
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def remove_output_folder(folder: Path) -> bool:
    """Delete folder if it is empty or still only what the tool wrote; True if gone.

    An unmarked folder goes only if empty (os.rmdir); a marked one file by file, each
    a file its marker lists, after checking that it holds nothing else.
    """
    if not folder.is_dir() or folder.is_symlink():
        return False
    listed = listed_files(folder)
    try:
        if listed is None or unexpected_entries(folder, listed):
            os.rmdir(folder)  # fails unless empty: what is not ours stays
            return True
        for name in listed:
            (folder / name).unlink(missing_ok=True)
        parents = {PurePosixPath(name).parent for name in listed} - {PurePosixPath(".")}
        nested = {ancestor for path in parents for ancestor in (path, *path.parents)}
        for path in sorted(nested - {PurePosixPath(".")}, key=lambda p: -len(p.parts)):
            if (folder / path).is_dir():
                os.rmdir(folder / path)
        (folder / MARKER).unlink(missing_ok=True)
        os.rmdir(folder)
    except OSError:
        return False
    return True


def swap_into_place(staging: Path, output: Path) -> Path | None:
    """Make staging the output with renames; the previous output goes afterwards.

    The previous output is moved aside into a new, uniquely named folder and removed
    only once the new one is in place and only if remove_output_folder agrees. Returns
    where the previous output was kept if it could not be removed, else None.
    """
    aside = None
    if output.exists() or output.is_symlink():
        aside = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.previous-"))
        output.rename(aside / output.name)
    try:
        staging.rename(output)
    except OSError:
        if aside is not None:
            (aside / output.name).rename(output)
            os.rmdir(aside)
        raise
    if aside is None:
        return None
    if remove_output_folder(aside / output.name):
        os.rmdir(aside)
        return None
    return aside / output.name


def discard_staging(staging: Path) -> None:
    """Remove a staging folder: make_staging created it, so all of it is the tool's."""
    shutil.rmtree(staging, ignore_errors=True)
