"""Repository functions and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from tkhub.catalog import db, store
from tkhub.catalog.schemas import ImageCreate, ImageUpdate, Source


@pytest.fixture
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    yield db.session_factory(engine)
    engine.dispose()


def oci(name: str, **fields: object) -> ImageCreate:
    return ImageCreate.model_validate({"name": name, "image": f"reg/{name}:1", **fields})


def test_migrations_empty_to_head_and_back(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    db.upgrade(engine)  # idempotent at every start
    tables = inspect(engine).get_table_names()
    assert {"images", "alembic_version"} <= set(tables)
    from alembic import command

    command.downgrade(db.alembic_config(engine), "base")
    assert "images" not in inspect(engine).get_table_names()
    engine.dispose()


def test_one_default_and_atomic_move(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        store.create_image(s, entry=oci("a", default=True))
        store.create_image(s, entry=oci("b"))
        s.commit()
    with sessions() as s, pytest.raises(store.ImageConflict, match="'a' is already the default"):
        store.update_image(s, name="b", update=ImageUpdate(default=True))
    with sessions() as s, pytest.raises(store.ImageConflict):
        store.create_image(s, entry=oci("c", default=True))
    with sessions() as s:
        store.set_default(s, name="b")
        s.commit()
        defaults = [i.name for i in store.list_images(s) if i.default]
    assert defaults == ["b"]


def test_patch_sets_override_and_keeps_kind_rules(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        store.create_image(s, entry=oci("a", display_name="Label"))
        store.update_image(s, name="a", update=ImageUpdate(display_name="Mine", hidden=True))
        s.commit()
        (entry,) = store.list_images(s)
    assert entry.display_name == "Mine" and entry.hidden


def test_sync_keeps_admin_fields(sessions) -> None:  # type: ignore[no-untyped-def]
    args = {"registry": "r1", "repository": "thinkube/py", "tag": "1.0"}
    with sessions() as s:
        first = store.upsert_registry_image(
            s, **args, entry=oci("py", display_name="From label"), digest="sha256:1"
        )
        store.update_image(
            s,
            name="py",
            update=ImageUpdate(display_name="Admin name", hidden=True, allowed_groups=["x"]),
        )
        store.set_default(s, name="py")
        same = store.upsert_registry_image(
            s, **args, entry=oci("py", display_name="From label"), digest="sha256:1"
        )
        changed = store.upsert_registry_image(
            s,
            **args,
            entry=oci("py", display_name="New label", description="d"),
            digest="sha256:2",
        )
        s.commit()
        (entry,) = store.list_images(s)
        row = store.get_row(s, name="py")
    assert (first, same, changed) == ("added", "unchanged", "updated")
    assert entry.display_name == "Admin name" and entry.hidden and entry.default
    assert entry.allowed_groups == ["x"] and entry.description == "d"
    assert row.display_name == "New label" and entry.digest == "sha256:2"
    assert entry.source is Source.registry


def test_remove_only_this_registrys_entries(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        for name, registry in (("a", "r1"), ("b", "r1"), ("c", "r2")):
            store.upsert_registry_image(
                s,
                registry=registry,
                repository=f"x/{name}",
                tag="1",
                entry=oci(name),
                digest=f"sha256:{name}",
            )
        store.create_image(s, entry=oci("api-made"))
        s.commit()
        assert store.registry_digests(s, registry="r1") == {
            ("x/a", "1"): "sha256:a",
            ("x/b", "1"): "sha256:b",
        }
        removed = store.remove_registry_images(s, registry="r1", keep={("x/a", "1")})
        s.commit()
        names = [i.name for i in store.list_images(s)]
    assert removed == ["b"] and names == ["a", "api-made", "c"]


def test_sync_never_takes_over_api_entries(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        store.create_image(s, entry=oci("mine"))
        s.commit()
        with pytest.raises(store.ImageConflict):
            store.upsert_registry_image(
                s, registry="r1", repository="x/mine", tag="1", entry=oci("mine"), digest=None
            )


def test_seed_only_an_empty_catalog(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        assert store.seed_if_empty(s, entry=oci("first", default=True), source=Source.local)
        assert not store.seed_if_empty(s, entry=oci("second"), source=Source.local)
        s.commit()
        assert [i.name for i in store.list_images(s)] == ["first"]
