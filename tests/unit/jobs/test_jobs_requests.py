"""What a job may name and carry: notebook paths, parameters, the submit body, and the
jobs tables' migration."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect

from tkhub.catalog import db as catalog_db
from tkhub.jobs import db
from tkhub.jobs.paths import NotebookRefused, notebook_path, run_files
from tkhub.jobs.schemas import JobSubmit, parse_parameter


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    root = tmp_path / "alice" / "notebooks"
    (root / "deep").mkdir(parents=True)
    (root / "deep" / "train.ipynb").write_text("{}")
    (tmp_path / "bob.ipynb").write_text("{}")
    (root / "out.ipynb").symlink_to(tmp_path / "bob.ipynb")
    (root / "in.ipynb").symlink_to(root / "deep" / "train.ipynb")
    (root / "dir.ipynb").mkdir()
    return root


def test_a_notebook_in_the_folder_is_given_back_relative(notebooks: Path):
    assert notebook_path(notebooks, "deep/train.ipynb") == PurePosixPath("deep/train.ipynb")
    absolute = str(notebooks / "deep" / "train.ipynb")
    assert notebook_path(notebooks, absolute) == PurePosixPath("deep/train.ipynb")
    assert notebook_path(notebooks, "./deep/train.ipynb") == PurePosixPath("deep/train.ipynb")
    assert notebook_path(notebooks, "in.ipynb") == PurePosixPath("deep/train.ipynb")


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("../bob.ipynb", "leads outside your notebooks folder"),
        ("deep/../../bob.ipynb", "leads outside your notebooks folder"),
        ("/etc/x.ipynb", "is not in your notebooks folder"),
        ("out.ipynb", "leads outside your notebooks folder"),
        ("missing.ipynb", "does not exist in your notebooks folder"),
        ("dir.ipynb", "does not exist in your notebooks folder"),
        ("notes.txt", "is not a notebook"),
        ("", "give the path of a notebook"),
        ("a\0.ipynb", "give the path of a notebook"),
    ],
)
def test_paths_out_of_the_folder_are_refused(notebooks: Path, given: str, said: str):
    with pytest.raises(NotebookRefused) as refused:
        notebook_path(notebooks, given)
    assert said in str(refused.value)


def test_an_admin_naming_a_user_is_told_whose_folder_was_searched(notebooks: Path):
    with pytest.raises(NotebookRefused, match="missing.ipynb does not exist in alice's notebooks"):
        notebook_path(notebooks, "missing.ipynb", "alice's")


def test_output_and_log_sit_next_to_the_notebook():
    out, log = run_files(PurePosixPath("deep/train.ipynb"), 12)
    assert (str(out), str(log)) == ("deep/train.run-12.ipynb", "deep/train.run-12.log")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=1e-4", ("lr", 1e-4)),
        ("epochs=3", ("epochs", 3)),
        ("name=tiny-gpt", ("name", "tiny-gpt")),
        ("flag=True", ("flag", True)),
        ("x=none", ("x", None)),
        ("eq=a=b", ("eq", "a=b")),
    ],
)
def test_parameters_are_read_as_papermill_reads_them(text, expected):
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["lr", "1x=2", "=3", "a-b=1"])
def test_a_parameter_that_is_not_name_value_is_refused(text):
    with pytest.raises(ValueError, match="write it as name=value"):
        parse_parameter(text)


def test_the_submit_body_names_what_is_wrong():
    with pytest.raises(ValidationError, match="not a Python name"):
        JobSubmit(notebook="a.ipynb", parameters={"bad name": 1})
    with pytest.raises(ValidationError, match="Extra inputs"):
        JobSubmit.model_validate({"notebook": "a.ipynb", "command": "rm -rf /"})
    with pytest.raises(ValidationError):
        JobSubmit(notebook="a.ipynb", time_limit=0)
    options = JobSubmit(notebook="a.ipynb", image="py", gpu="auto", count=2).selection_options()
    assert options == {"image": "py", "gpu": "auto", "count": "2"}


def test_the_jobs_tables_share_a_database_with_the_catalog(tmp_path: Path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    catalog_db.upgrade(engine)
    db.upgrade(engine)
    db.upgrade(engine)  # every start runs it again
    tables = set(inspect(engine).get_table_names())
    assert {"tkhub_jobs", "tkhub_jobs_alembic_version", "alembic_version"} <= tables
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM tkhub_jobs_alembic_version")
        assert [row[0] for row in version] == ["jobs_0002"]


def test_a_database_of_the_first_release_keeps_its_jobs_when_upgraded(tmp_path: Path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    db.upgrade(engine, "jobs_0001")
    with engine.begin() as connection:  # a job running when the service was upgraded
        connection.exec_driver_sql(
            "INSERT INTO tkhub_jobs (user, notebook, output, log, environment, placement,"
            " count, size, options, parameters, time_limit, state, reason, error, gpus,"
            " runner_ref, created, cancel_requested) VALUES ('alice', 'a.ipynb',"
            " 'a.run-1.ipynb', 'a.run-1.log', 'py', 'auto', 1, 'full', '{}', '{}', 60,"
            " 'running', '', '', '[]', '{}', '2026-12-01 10:00:00', 0)"
        )
    db.upgrade(engine)
    with engine.connect() as connection:
        rows = list(connection.exec_driver_sql("SELECT user, state, node FROM tkhub_jobs"))
    assert rows == [("alice", "running", "")]  # placed: known at its next poll
