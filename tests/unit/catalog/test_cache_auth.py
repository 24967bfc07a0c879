"""The in-memory snapshot and the write permission rule."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tkhub.catalog import db, store
from tkhub.catalog.cache import CatalogCache
from tkhub.catalog.hub_tokens import CATALOG_ADMIN_SCOPE, caller_from_model
from tkhub.catalog.schemas import ImageCreate


def test_snapshot_follows_writes_after_invalidate() -> None:
    root = tempfile.mkdtemp(dir="/tmp")
    engine = db.make_engine(f"sqlite:///{Path(root) / 'c.sqlite'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    cache, uncached = CatalogCache(sessions), CatalogCache(sessions, enabled=False)
    assert cache.images() == ()
    with sessions() as session:
        store.create_image(session, entry=ImageCreate(name="a", image="reg/a:1"))
        session.commit()
    assert cache.images() == ()  # a snapshot until someone invalidates it
    assert [i.name for i in uncached.images()] == ["a"]
    cache.invalidate()
    assert [i.name for i in cache.images()] == ["a"] and cache.generation == 1
    assert b'"name":"a"' in cache.snapshot().encoded[0]
    assert not cache.refresh_if_changed()
    with sessions() as session:  # as another process would write
        store.create_image(session, entry=ImageCreate(name="b", image="reg/b:1"))
        session.commit()
    assert cache.refresh_if_changed() and [i.name for i in cache.images()] == ["a", "b"]
    engine.dispose()
    shutil.rmtree(root)


def test_who_may_write() -> None:
    assert caller_from_model({"name": "a", "admin": True}).can_write
    assert caller_from_model({"name": "w", "scopes": [CATALOG_ADMIN_SCOPE]}).can_write
    user = caller_from_model({"name": "u", "groups": ["g"], "scopes": ["read:users:name"]})
    assert not user.can_write and user.groups == {"g"}
