"""`clv run` writes only into folders it created and never destroys the user's files.

Refusals happen before dbt starts, so they are tested through the real CLI; the swap
and the marker are tested as functions on small folders; one test does real runs.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import clv

from clv import cli
from clv.output_folder import (
    MARKER,
    RefusedPath,
    check_output_folder,
    check_warehouse,
    make_staging,
    remove_output_folder,
    swap_into_place,
    write_marker,
)


def assert_refused(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit 2 (bad input), one line on stderr, and refused before any work (nothing on stdout)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("clv run failed: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert result.stdout == "", result.stdout  # dbt never started


def run_into_out(source: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """`clv run` of source into tmp_path/out, with the warehouse tmp_path/warehouse.duckdb."""
    return clv(
        "run", "--input", str(source), "--output", str(tmp_path / "out"), *flags,
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes, to compare before and after."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def user_folder(tmp_path: Path, transactions: Path) -> Path:
    """A folder of the user's: their transactions file and some notes."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "transactions.csv").write_bytes(transactions.read_bytes())
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def a_previous_output(folder: Path) -> Path:
    """A folder as a run leaves it: a few files and the marker listing them."""
    (folder / "reports").mkdir(parents=True)
    (folder / "predictions.csv").write_text("customer_id\n1\n")
    (folder / "reports" / "rpt_a.parquet").write_bytes(b"PAR1")
    (folder / "run.json").write_text('{"status": "complete"}')
    write_marker(folder)
    return folder


def listed_in_marker(folder: Path) -> set[str]:
    return set(json.loads((folder / MARKER).read_text())["files"])


# The refusals, through the real command line -------------------------------------------


def test_output_dot_in_the_input_folder_is_refused_and_the_files_stay(
    user_folder: Path, tmp_path: Path
) -> None:
    before = snapshot(user_folder)
    result = clv(
        "run", "--input", "transactions.csv", "--output", ".",
        database=tmp_path / "warehouse.duckdb", cwd=user_folder,
    )  # fmt: skip
    assert_refused(result, str(user_folder), "choose a new folder")
    assert snapshot(user_folder) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["work"]


def test_output_in_a_folder_of_user_files_is_refused(
    user_folder: Path, transactions: Path, tmp_path: Path
) -> None:
    before = snapshot(user_folder)
    result = clv(
        "run", "--input", str(transactions), "--output", str(user_folder),
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip
    assert_refused(result, f"--output {user_folder} is a folder that clv did not create")
    assert snapshot(user_folder) == before


def test_output_that_is_an_existing_file_is_refused_and_kept(
    transactions: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.txt"
    report.write_text("quarterly numbers\n")
    result = clv(
        "run", "--input", str(transactions), "--output", str(report),
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip
    assert_refused(result, f"--output {report} is an existing file", "choose a new folder")
    assert report.read_text() == "quarterly numbers\n"
    below = clv(
        "run", "--input", str(transactions), "--output", str(report / "out"),
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip
    assert_refused(below, f"because {report} is a file")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.txt"]


def test_marked_output_holding_a_user_file_is_refused(transactions: Path, tmp_path: Path) -> None:
    output = a_previous_output(tmp_path / "out")
    (output / "reports" / "notes.txt").write_text("mine\n")
    before = snapshot(output)
    result = clv(
        "run", "--input", str(transactions), "--output", str(output),
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip
    assert_refused(result, "holds files that clv did not write (reports/notes.txt)")
    assert snapshot(output) == before


@pytest.mark.parametrize("inside", ["out/warehouse.duckdb", "out"])
def test_warehouse_inside_the_output_folder_is_refused(
    transactions: Path, tmp_path: Path, inside: str
) -> None:
    output = tmp_path / "out"
    result = clv(
        "run", "--input", str(transactions), "--output", str(output),
        database=tmp_path / inside,
    )  # fmt: skip
    assert_refused(result, f"CLV_DUCKDB_PATH={tmp_path / inside} is inside --output {output}")
    assert not output.exists()


@pytest.mark.parametrize("as_glob", [False, True], ids=["file", "glob"])
def test_warehouse_that_is_an_input_file_is_refused(
    user_folder: Path, tmp_path: Path, as_glob: bool
) -> None:
    csv = user_folder / "transactions.csv"
    before = csv.read_bytes()
    pattern = str(user_folder / "*.csv") if as_glob else str(csv)
    result = clv("run", "--input", pattern, "--output", str(tmp_path / "out"), database=csv)
    assert_refused(result, f"CLV_DUCKDB_PATH={csv} is one of the input files")
    assert csv.read_bytes() == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["text file", "empty file", "folder"])
def test_warehouse_that_is_not_a_duckdb_file_is_refused(
    transactions: Path, tmp_path: Path, kind: str
) -> None:
    database = tmp_path / "warehouse.duckdb"
    if kind == "folder":
        database.mkdir()
    else:
        database.write_text("not a database\n" if kind == "text file" else "")
    result = run_into_out(transactions, tmp_path)
    expected = "a folder" if kind == "folder" else "a file that is not a DuckDB database"
    assert_refused(result, f"CLV_DUCKDB_PATH={database} is {expected}")


def test_a_warehouse_in_use_is_refused_naming_it(transactions: Path, tmp_path: Path) -> None:
    """An overlapping run holds DuckDB's lock: one sentence before any work, not DuckDB's."""
    database = tmp_path / "warehouse.duckdb"
    in_use = f"the warehouse {database} is in use by another process (PID {os.getpid()})"
    with duckdb.connect(str(database)):
        result = run_into_out(transactions, tmp_path)
        assert_refused(result, in_use, "run again when it is done")
        published = clv("publish", "--to", "redis://localhost:1", database=database)
    assert published.returncode == 2, published.stderr
    assert published.stderr.startswith(f"clv publish failed: {in_use}")


def test_parquet_files_named_without_their_extension_are_refused(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    pd.DataFrame({"customer_id": ["C1"], "amount": [1.0]}).to_parquet(exports / "day_1")
    result = run_into_out(exports / "*", tmp_path)
    assert_refused(
        result, f"{exports / 'day_1'} is a Parquet file, but --input {exports / '*'} is read as CSV"
    )


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("ftp://x", "the store must be redis://, rediss:// or dynamodb://TABLE_PREFIX"),
        ("dynamodb://", "dynamodb:// needs a table prefix"),
        (
            "redis://:s3cret@localhost:notaport",
            "<unparsable Redis URL> is not a usable Redis URL (Port could not be cast",
        ),
        ("redis://localhost:6379/O", "the database in a Redis URL is a number"),
    ],
)
def test_a_store_url_that_cannot_be_used_is_refused_before_the_build(
    transactions: Path, tmp_path: Path, url: str, phrase: str
) -> None:
    result = run_into_out(transactions, tmp_path, "--publish", url)
    assert_refused(result, phrase)
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["publish"], "--to"), (["run", "--input", "x.csv", "--output", "out"], "--publish")],
)
def test_a_store_url_without_its_flag_is_shown_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "redis://:s3cret@cache:6379/0"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"usage: clv {argv[0]}" in error  # the subcommand's usage, not clv's
    assert f"(a store URL goes after {flag}: {flag} redis://:***@cache:6379/0)" in error
    assert "s3cret" not in error


def test_a_memory_limit_duckdb_cannot_read_is_refused(
    transactions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_DUCKDB_MEMORY_LIMIT", "1.5 gigs")
    result = run_into_out(transactions, tmp_path)
    assert_refused(result, "CLV_DUCKDB_MEMORY_LIMIT='1.5 gigs' is not a size DuckDB reads (")
    assert result.stderr.rstrip().endswith("): set it like 1.5GB or 8GB")


def test_a_spark_master_spark_cannot_read_is_refused(
    transactions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_SPARK_MASTER", "localhost:7077")
    result = run_into_out(transactions, tmp_path, "--engine", "spark")
    assert_refused(result, "CLV_SPARK_MASTER='localhost:7077' is not a Spark master: use local[*]")


@pytest.mark.parametrize("warehouse", ["missing", "no registry", "empty registry"])
def test_score_only_before_any_build_says_so(
    transactions: Path, tmp_path: Path, warehouse: str
) -> None:
    database = tmp_path / "warehouse.duckdb"
    if warehouse != "missing":
        with duckdb.connect(str(database)) as connection:
            connection.execute("create table customers (customer_id varchar)")
            if warehouse == "empty registry":
                connection.execute("create table model_registry (model_version varchar)")
    result = run_into_out(transactions, tmp_path, "--score-only")
    assert_refused(result)
    assert result.stderr.strip() == (
        f"clv run failed: no registered model in {database}: run without --score-only first"
    )
    assert database.exists() == (warehouse != "missing")


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("{amount_column: total", "--vars is not valid YAML"),
        ("amount_column: [total", "--vars is not valid YAML"),
        ("[amount_column, total]", "--vars must be a mapping"),
        ("total", "--vars must be a mapping"),
    ],
)
def test_malformed_vars_give_one_sentence(
    transactions: Path, tmp_path: Path, value: str, phrase: str
) -> None:
    result = run_into_out(transactions, tmp_path, "--vars", value)
    assert_refused(result, phrase, "'{amount_column: total}'")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# The output folder's checks, as functions ----------------------------------------------


def test_new_empty_and_own_folders_are_accepted(tmp_path: Path) -> None:
    check_output_folder(tmp_path / "new" / "deeper")
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    own = a_previous_output(tmp_path / "own")
    check_output_folder(own)
    (own / "predictions.csv").unlink()  # a file the tool wrote may go missing
    check_output_folder(own)


def test_the_marker_lists_every_file_written(tmp_path: Path) -> None:
    output = a_previous_output(tmp_path / "out")
    marker = json.loads((output / MARKER).read_text())
    assert marker["files"] == ["predictions.csv", "reports/rpt_a.parquet", "run.json"]


def add_file(folder: Path) -> None:
    (folder / "notes.txt").write_text("mine")


def add_nested_file(folder: Path) -> None:
    (folder / "reports" / "notes.txt").write_text("mine")


def add_empty_folder(folder: Path) -> None:
    (folder / "drafts").mkdir()


def link_a_folder(folder: Path) -> None:
    target = folder.parent / "elsewhere"
    target.mkdir()
    (folder / "reports" / "rpt_a.parquet").unlink()
    (folder / "reports").rmdir()
    (folder / "reports").symlink_to(target, target_is_directory=True)


def replace_a_file_by_a_folder(folder: Path) -> None:
    (folder / "run.json").unlink()
    (folder / "run.json").mkdir()
    (folder / "run.json" / "notes.txt").write_text("mine")


def break_the_marker(folder: Path) -> None:
    (folder / MARKER).write_text("{not json")


def list_a_file_outside(folder: Path) -> None:
    (folder / MARKER).write_text(json.dumps({"files": ["run.json", "../victim.txt"]}))


@pytest.mark.parametrize(
    "change",
    [
        add_file,
        add_nested_file,
        add_empty_folder,
        link_a_folder,
        replace_a_file_by_a_folder,
        break_the_marker,
        list_a_file_outside,
    ],
)
def test_an_output_folder_changed_by_the_user_is_refused(
    tmp_path: Path, change: Callable[[Path], None]
) -> None:
    output = a_previous_output(tmp_path / "out")
    change(output)
    with pytest.raises(RefusedPath, match=f"--output {output} "):
        check_output_folder(output)


def test_an_output_folder_holding_the_input_is_refused(tmp_path: Path) -> None:
    output = a_previous_output(tmp_path / "out")
    with pytest.raises(RefusedPath, match="is inside --output"):
        check_output_folder(output, [output / "predictions.csv"])


# The swap, as functions ----------------------------------------------------------------


def staged_results(output: Path, text: str) -> Path:
    staging = make_staging(output)
    (staging / "run.json").write_text(text)
    write_marker(staging)
    return staging


def test_staging_folders_are_new_unique_and_not_private(tmp_path: Path) -> None:
    output = tmp_path / "deeper" / "out"
    first, second = make_staging(output), make_staging(output)
    assert first != second and first.parent == second.parent == output.parent
    assert first.name.startswith(".out.partial-") and not any(first.iterdir())
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(first.stat().st_mode) == 0o777 & ~umask


def test_swap_into_a_new_folder(tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert swap_into_place(staged_results(output, "new"), output) is None
    assert (output / "run.json").read_text() == "new"
    check_output_folder(output)  # the next run may replace it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("previous", ["own output", "empty folder"])
def test_swap_replaces_an_own_or_empty_folder_and_leaves_nothing_beside(
    tmp_path: Path, previous: str
) -> None:
    output = tmp_path / "out"
    if previous == "own output":
        a_previous_output(output)
    else:
        output.mkdir()
    assert swap_into_place(staged_results(output, "new"), output) is None
    assert sorted(snapshot(output)) == [MARKER, "run.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_swap_keeps_a_previous_folder_that_gained_a_user_file(tmp_path: Path) -> None:
    output = a_previous_output(tmp_path / "out")
    staging = staged_results(output, "new")
    add_nested_file(output)  # during the run, after the check
    kept = swap_into_place(staging, output)
    assert (output / "run.json").read_text() == "new"
    assert kept is not None and kept.parent.parent == tmp_path
    assert (kept / "reports" / "notes.txt").read_text() == "mine"
    assert (kept / "predictions.csv").exists()  # nothing deleted from a folder not all ours


def test_swap_never_touches_user_folders_with_the_names_of_its_own(tmp_path: Path) -> None:
    output = tmp_path / "out"
    for name in (".out.partial", ".out.previous", ".out.partial-x", ".out.previous-x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text(name)
    before = snapshot(tmp_path)
    swap_into_place(staged_results(output, "first"), output)
    swap_into_place(staged_results(output, "second"), output)
    assert (output / "run.json").read_text() == "second"
    after = snapshot(tmp_path)
    assert {name: after[name] for name in before} == before
    assert len(list(tmp_path.iterdir())) == 5


def test_a_failed_swap_puts_the_previous_output_back(tmp_path: Path) -> None:
    output = a_previous_output(tmp_path / "out")
    before = snapshot(output)
    with pytest.raises(FileNotFoundError):
        swap_into_place(tmp_path / ".out.partial-gone", output)
    assert snapshot(output) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_removal_deletes_only_what_a_valid_marker_lists(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    output = a_previous_output(tmp_path / "out")
    list_a_file_outside(output)
    assert remove_output_folder(output) is False
    assert victim.read_text() == "mine" and (output / "run.json").exists()
    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    (unmarked / "a.txt").write_text("mine")
    assert remove_output_folder(unmarked) is False and (unmarked / "a.txt").exists()
    (unmarked / "a.txt").unlink()
    assert remove_output_folder(unmarked) is True and not unmarked.exists()


# The warehouse's checks, as functions --------------------------------------------------


def a_duckdb_file(path: Path, registry_rows: int = 0) -> Path:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create table model_registry (model_version varchar)")
        for row in range(registry_rows):
            connection.execute("insert into model_registry values (?)", [f"m{row}"])
    return path


def test_a_new_or_duckdb_warehouse_outside_the_output_is_accepted(tmp_path: Path) -> None:
    output, csv = tmp_path / "out", tmp_path / "transactions.csv"
    csv.write_text("customer_id\n")
    check_warehouse(tmp_path / "new" / "warehouse.duckdb", output, [csv])
    check_warehouse(a_duckdb_file(tmp_path / "w.duckdb"), output, [csv])
    check_warehouse(
        a_duckdb_file(tmp_path / "trained.duckdb", registry_rows=2), output, [csv], True
    )


def test_a_warehouse_that_is_an_input_under_another_name_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "transactions.csv"
    csv.write_text("customer_id\n")
    os.link(csv, tmp_path / "warehouse.duckdb")
    with pytest.raises(RefusedPath, match="is one of the input files"):
        check_warehouse(tmp_path / "warehouse.duckdb", tmp_path / "out", [csv])


def test_a_warehouse_below_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file")
    with pytest.raises(RefusedPath, match=f"because {tmp_path / 'data'} is a file"):
        check_warehouse(tmp_path / "data" / "warehouse.duckdb", tmp_path / "out")


# The run around the swap, with dbt and the export's contents replaced by stand-ins ----


def run_with_stand_ins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, during_the_run: Callable[[], None]
) -> int:
    from clv import export, run

    def write_contents(connection, folder, model_version) -> dict:
        (folder / "predictions.csv").write_text("new")
        during_the_run()
        return {"customers": 1, "as_of_date": "2025-12-31", "model_version": "m1"}

    monkeypatch.setattr(run, "run_dbt", lambda args, variables, progress: None)
    monkeypatch.setattr(export, "write_contents", write_contents)
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    (tmp_path / "transactions.csv").write_text("customer_id\n")
    arguments = ["run", "--input", str(tmp_path / "transactions.csv")]
    return cli.main([*arguments, "--output", str(tmp_path / "out")])


def test_a_run_replaces_its_own_folder_and_marks_the_new_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a_previous_output(tmp_path / "out")
    assert run_with_stand_ins(monkeypatch, tmp_path, lambda: None) == 0
    assert snapshot(tmp_path / "out") == {
        MARKER: (tmp_path / "out" / MARKER).read_bytes(),
        "run.json": (tmp_path / "out" / "run.json").read_bytes(),
        "predictions.csv": b"new",
    }
    assert listed_in_marker(tmp_path / "out") == {"predictions.csv", "run.json"}
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out")]


def test_a_user_file_added_during_the_run_stays_and_so_do_the_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = a_previous_output(tmp_path / "out")
    before = snapshot(output)
    code = run_with_stand_ins(monkeypatch, tmp_path, lambda: add_file(output))
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"clv run failed: --output {output} holds files that clv did not")
    assert snapshot(output) == {**before, "notes.txt": b"mine"}
    [staging] = [path for path in tmp_path.iterdir() if path.name.startswith(".out.partial-")]
    assert message.endswith(f"the exported folder is {staging}")
    assert (staging / "predictions.csv").read_text() == "new"


# One real run, then a second into the same folder --------------------------------------


def test_a_second_run_replaces_its_own_folder_but_not_one_holding_a_user_file(
    transactions: Path, tmp_path: Path
) -> None:
    database, output = tmp_path / "warehouse.duckdb", tmp_path / "out"
    for name in (".out.partial", ".out.previous"):  # the user's, despite the names
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text(name)

    first = clv("run", "--input", str(transactions), "--output", str(output), database=database)
    assert first.returncode == 0, first.stdout + first.stderr
    for name in (".out.partial", ".out.previous"):
        assert (tmp_path / name / "keep.txt").read_text() == name
    assert listed_in_marker(output) == set(snapshot(output)) - {MARKER}
    assert {"run.json", "predictions.csv", "report.html"} <= listed_in_marker(output)
    first_summary = json.loads((output / "run.json").read_text())

    # A scoring run keeps the horizon and quantile levels its version was trained for,
    # and names a registered version.
    for flags, phrase in [
        (["--horizon-days", "30"], "was trained and calibrated to forecast 90 days ahead, not 30"),
        (["--vars", "{quantiles: [0.25, 0.75]}"], "levels [0.1, 0.5, 0.9], each calibrated"),
        (["--vars", "{model_version: m1999}"], "model_version m1999 is not in the registry of"),
    ]:
        other = clv(
            "run", "--input", str(transactions), "--output", str(output), "--score-only", *flags,
            database=database,
        )  # fmt: skip
        assert_refused(other, phrase)
    assert json.loads((output / "run.json").read_text()) == first_summary

    second = clv(
        "run", "--input", str(transactions), "--output", str(output), "--score-only",
        database=database,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    second_summary = json.loads((output / "run.json").read_text())
    assert second_summary["started_at"] != first_summary["started_at"]
    assert listed_in_marker(output) == set(snapshot(output)) - {MARKER}
    beside = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".out"))
    assert beside == [".out.partial", ".out.previous"]  # no staging or previous left over
    for name in (".out.partial", ".out.previous"):
        assert (tmp_path / name / "keep.txt").read_text() == name

    (output / "notes.txt").write_text("my notes\n")
    before = snapshot(output)
    third = clv("run", "--input", str(transactions), "--output", str(output), database=database)
    assert_refused(third, "holds files that clv did not write (notes.txt)")
    assert snapshot(output) == before
