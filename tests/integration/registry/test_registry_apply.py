"""Writing a discovery: new images inserted together match the store's own rows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.models import Image
from tkhub.catalog.registry.apply import apply_discovery
from tkhub.catalog.registry.discover import Discovery, Found
from tkhub.catalog.registry.report import RegistryReport
from tkhub.catalog.schemas import ImageCreate, Kind, Source

DIGEST = "sha256:" + "1" * 64


def entry(name: str, **extra: object) -> ImageCreate:
    return ImageCreate.model_validate(
        {
            "name": name,
            "kind": Kind.oci,
            "image": f"reg.example/{name}@{DIGEST}",
            "display_name": "Lab",
            "description": "a lab",
            "gpu": "required",
            "examples": "https://example.org/x.git",
            "packages": ["torch", "numpy"],
            "resources": {"cpu_limit": "2", "mem_limit": "8Gi"},
            **extra,
        }
    )


def columns(row: Image) -> dict[str, object]:
    skip = {"name", "repository", "updated_at", "image"}
    return {c.key: getattr(row, c.key) for c in Image.__mapper__.column_attrs if c.key not in skip}


def test_inserted_rows_equal_the_stores_rows(catalog_db: sessionmaker[Session]) -> None:
    with catalog_db() as session:
        store.upsert_registry_image(
            session,
            registry="r",
            repository="by/store",
            tag="1",
            entry=entry("by-store"),
            digest=DIGEST,
        )
        session.commit()
    discovery = Discovery(
        "r",
        found=[
            Found("by/store", "1", DIGEST, None),  # unchanged
            Found("bulk/a", "1", DIGEST, entry("bulk-a"), ["linux/amd64"]),
            Found("bulk/b", "1", DIGEST, entry("bulk-b")),
            Found("dflt/c", "1", DIGEST, entry("dflt-c", default=True)),  # through the store
        ],
        keep={("by/store", "1"), ("bulk/a", "1"), ("bulk/b", "1"), ("dflt/c", "1")},
    )
    report = RegistryReport(registry="r", started_at=datetime.now(UTC))
    with catalog_db() as session:
        apply_discovery(session, discovery, known={("by/store", "1"): DIGEST}, report=report)
        session.commit()

    assert [(c.name, c.platforms) for c in report.added] == [
        ("bulk-a", ["linux/amd64"]),
        ("bulk-b", []),
        ("dflt-c", []),
    ]
    assert report.unchanged == ["by/store:1"] and report.removed == []
    with catalog_db() as session:
        rows = {row.name: row for row in session.query(Image)}
        reference = columns(rows["by-store"])
        assert columns(rows["bulk-a"]) == reference
        assert columns(rows["bulk-b"]) == reference
        assert (rows["bulk-a"].repository, rows["bulk-a"].tag) == ("bulk/a", "1")
        assert rows["dflt-c"].is_default  # the first image asking for it gets it
        public = {i.name: i for i in store.list_images(session)}
        assert public["bulk-a"].resources.mem_limit == "8Gi"
        assert public["bulk-a"].image == f"reg.example/bulk-a@{DIGEST}"


def test_a_registry_row_not_kept_is_removed_even_when_every_known_tag_is(
    catalog_db: sessionmaker[Session],
) -> None:
    with catalog_db() as session:
        store.upsert_registry_image(
            session, registry="r", repository="a/b", tag="1", entry=entry("a-b"), digest=DIGEST
        )
        row = store.create_image(session, entry=entry("odd"), source=Source.registry)
        row.registry_name = "r"  # no repository or tag: not among the known digests
        session.commit()
        known = store.registry_digests(session, registry="r")
    assert known == {("a/b", "1"): DIGEST}
    discovery = Discovery("r", found=[Found("a/b", "1", DIGEST, None)], keep={("a/b", "1")})
    report = RegistryReport(registry="r", started_at=datetime.now(UTC))
    with catalog_db() as session:
        apply_discovery(session, discovery, known=known, report=report)
        session.commit()
        assert report.removed == ["odd"]
        assert [i.name for i in store.list_images(session)] == ["a-b"]
