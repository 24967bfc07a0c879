"""Examples delivered into a user's ``notebooks/examples/<folder>/`` without ever
overwriting their work.

For each upstream file (``common/`` plus the environment's folder; the folder wins
a name clash), with the hash recorded when it was last delivered:

- the user never had it: copied;
- unchanged since delivered: updated to upstream;
- edited by the user: never touched; a differing upstream goes beside it as
  ``name.updated.ext`` (replaced by later updates);
- deleted by the user: stays deleted.

The record (``notebooks/examples/.delivered.json``, in the user's persistent notebooks
in both modes) keeps the delivered hashes per folder. Everything is written through a
temp file and a rename. ``notebooks/templates`` links to the synced repository's
served copy (read-only).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tkhub.examples import COMMON

RECORD = Path("examples/.delivered.json")  # under notebooks/
TEMPLATES = Path("templates")  # notebooks/templates -> the served examples
TEMPLATES_TARGET = Path("../examples-repo/current")

Chown = Callable[[Path], None]


@dataclass
class Delivery:
    """What one delivery did, for the spawn's progress and the log."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    beside: list[str] = field(default_factory=list)  # edited: the new version went beside

    def summary(self, folder: str) -> str:
        parts = [f"{len(self.copied)} new", f"{len(self.updated)} updated"]
        text = f"Examples in notebooks/examples/{folder}: " + ", ".join(parts)
        if self.beside:
            names = ", ".join(self.beside[:3]) + (" ..." if len(self.beside) > 3 else "")
            text += f"; you edited {names}: the new version is beside it (.updated)"
        return text


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upstream_files(repo: Path, folder: str) -> dict[str, Path]:
    """Relative name -> file, ``common`` first so the folder's own files win."""
    found: dict[str, Path] = {}
    for part in (COMMON, folder):
        base = repo / part
        if not base.is_dir() or (part == COMMON and folder == COMMON and found):
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink():
                rel = path.relative_to(base)
                if not any(p.startswith(".") for p in rel.parts):
                    found[rel.as_posix()] = path
    return found


def updated_name(rel: str) -> str:
    path = Path(rel)
    return str(path.with_name(f"{path.stem}.updated{path.suffix}"))


def _write(dest: Path, source: Path, chown: Chown | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if chown:
        chown(dest.parent)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(source.read_bytes())
        os.chmod(tmp, 0o644)
        if chown:
            chown(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_record(notebooks: Path) -> dict[str, dict[str, str]]:
    try:
        record = json.loads((notebooks / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def save_record(notebooks: Path, record: dict[str, dict[str, str]], chown: Chown | None) -> None:
    path = notebooks / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".delivered.")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    if chown:
        chown(Path(tmp))
    os.replace(tmp, path)


def ensure_templates_link(notebooks: Path) -> None:
    """``notebooks/templates``: the served examples, read-only (not if the user has
    something of their own there)."""
    link = notebooks / TEMPLATES
    if not link.is_symlink() and not link.exists():
        link.symlink_to(TEMPLATES_TARGET)


def deliver_file(rel: str, source: Path, dest_dir: Path, delivered: dict[str, str],
                 done: Delivery, chown: Chown | None) -> None:  # fmt: skip
    """Apply the four rules to one file; ``delivered`` (rel -> hash) is updated."""
    upstream = digest(source)
    dest = dest_dir / rel
    before = delivered.get(rel)
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        return  # something of the user's own kind is there: leave it
    if not dest.exists():
        if before is None:
            _write(dest, source, chown)
            delivered[rel] = upstream
            done.copied.append(rel)
        return  # delivered once, since deleted: stays deleted
    mine = digest(dest)
    if mine == upstream:
        delivered[rel] = upstream
        return
    if before is not None and mine == before:
        _write(dest, source, chown)  # unedited: follow upstream
        delivered[rel] = upstream
        done.updated.append(rel)
        return
    if before is not None and upstream == before:
        return  # edited, and nothing new upstream
    side = updated_name(rel)
    beside = dest_dir / side
    if beside.exists():
        if digest(beside) == upstream:
            return
        if delivered.get(side) != digest(beside):
            return  # the user edited the .updated copy too: theirs now
    elif delivered.get(side) == upstream:
        return  # this version was put beside once and the user deleted it
    _write(beside, source, chown)
    delivered[side] = upstream
    done.beside.append(rel)


def deliver(repo: Path, folder: str, notebooks: Path, chown: Chown | None = None) -> Delivery:
    """Deliver ``common`` + ``folder`` of ``repo`` (the served copy) into
    ``notebooks/examples/<folder>``; what was done."""
    record = load_record(notebooks)
    delivered = record.setdefault(folder, {})
    done = Delivery()
    dest = notebooks / "examples" / folder
    for rel, source in upstream_files(repo, folder).items():
        deliver_file(rel, source, dest, delivered, done, chown)
    save_record(notebooks, record, chown)
    ensure_templates_link(notebooks)
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m tkhub.examples.delivery --repo R --folder F --notebooks N``: run as the
    user (local mode: the hub starts it with the user's account; Kubernetes: an init
    container with the user's volume). Prints the summary; never fails the spawn:
    exit 0 with "error: ..." on a problem."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--repo", type=Path, required=True, help="the served examples")
    parser.add_argument("--folder", required=True, help="the environment's examples folder")
    parser.add_argument("--notebooks", type=Path, required=True, help="the user's notebooks")
    args = parser.parse_args(argv)
    try:
        if not args.repo.is_dir():
            print("error: the examples are not synced yet")
            return 0
        print(deliver(args.repo.resolve(), args.folder, args.notebooks).summary(args.folder))
    except OSError as e:
        print(f"error: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
