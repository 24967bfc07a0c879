"""The delivery rules, as a property over random histories of upstream changes and
user edits and deletes, plus the plain cases by name."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tkhub.examples.delivery import deliver

NAMES = ["a.ipynb", "b.ipynb", "data/c.csv"]
FOLDER = "scipy"

step = st.one_of(
    st.tuples(st.just("upstream"), st.sampled_from(NAMES), st.integers(0, 3)),  # 0: remove
    st.tuples(st.just("edit"), st.sampled_from(NAMES), st.integers(1, 3)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("deliver"), st.just(""), st.just(0)),
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=25))
def test_no_edit_is_lost_and_unedited_files_follow_upstream(history):
    with tempfile.TemporaryDirectory() as tmp:
        repo, notebooks = Path(tmp) / "repo", Path(tmp) / "notebooks"
        dest = notebooks / "examples" / FOLDER
        upstream: dict[str, str] = {}
        mine: dict[str, str] = {}  # files whose content the user decided
        deleted: set[str] = set()
        for action, name, n in [*history, ("deliver", "", 0)]:
            if action == "upstream":
                path = repo / FOLDER / name
                if n == 0:
                    path.unlink(missing_ok=True)
                    upstream.pop(name, None)
                else:
                    upstream[name] = f"upstream {name} v{n}"
                    write(path, upstream[name])
            elif action == "edit" and (dest / name).exists():
                mine[name] = f"my edit {n} of {name}"
                write(dest / name, mine[name])
            elif action == "delete" and (dest / name).exists():
                (dest / name).unlink()
                mine.pop(name, None)
                deleted.add(name)
            elif action == "deliver":
                repo.mkdir(parents=True, exist_ok=True)
                deliver(repo, FOLDER, notebooks)
                for f in NAMES:
                    target = dest / f
                    if f in mine:  # no user edit is ever lost
                        assert target.read_text() == mine[f]
                        if f in upstream and upstream[f] != mine[f]:
                            beside = dest / Path(f).with_name(
                                f"{Path(f).stem}.updated{Path(f).suffix}"
                            )
                            # the newest upstream is beside it, unless it is what
                            # the user started from (nothing new then)
                            assert not beside.exists() or beside.read_text().startswith("upstream")
                    elif f in deleted:  # deleted stays deleted
                        assert not target.exists()
                    elif f in upstream:  # unedited converges to upstream
                        assert target.read_text() == upstream[f]


def test_the_four_rules_by_name(tmp_path):
    repo, notebooks = tmp_path / "repo", tmp_path / "notebooks"
    dest = notebooks / "examples" / FOLDER
    for name in ("kept.ipynb", "edited.ipynb", "gone.ipynb"):
        write(repo / FOLDER / name, f"{name} v1")
    write(repo / "common" / "tour.ipynb", "tour v1")
    first = deliver(repo, FOLDER, notebooks)
    assert sorted(first.copied) == ["edited.ipynb", "gone.ipynb", "kept.ipynb", "tour.ipynb"]
    write(dest / "edited.ipynb", "my work")
    (dest / "gone.ipynb").unlink()
    for name in ("kept.ipynb", "edited.ipynb", "gone.ipynb"):
        write(repo / FOLDER / name, f"{name} v2")
    second = deliver(repo, FOLDER, notebooks)
    assert second.updated == ["kept.ipynb"] and second.beside == ["edited.ipynb"]
    assert (dest / "kept.ipynb").read_text() == "kept.ipynb v2"
    assert (dest / "edited.ipynb").read_text() == "my work"
    assert (dest / "edited.updated.ipynb").read_text() == "edited.ipynb v2"
    assert not (dest / "gone.ipynb").exists()
    assert "you edited edited.ipynb" in second.summary(FOLDER)
    # a later update replaces the .updated copy; nothing else moves
    write(repo / FOLDER / "edited.ipynb", "edited.ipynb v3")
    deliver(repo, FOLDER, notebooks)
    assert (dest / "edited.updated.ipynb").read_text() == "edited.ipynb v3"
    assert (dest / "edited.ipynb").read_text() == "my work"
    # nothing new: nothing done
    quiet = deliver(repo, FOLDER, notebooks)
    assert not (quiet.copied or quiet.updated or quiet.beside)
    assert (notebooks / "templates").readlink() == Path("../examples-repo/current")
