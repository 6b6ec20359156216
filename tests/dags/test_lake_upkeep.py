"""Lake upkeep (the maintenance DAG's lake_upkeep task): compaction and vacuum within the
retention, never ahead of issuance, and without disturbing the exactly-once state."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from sample_deployment import Deployment

from catalog_schemas.errors import FatalError
from exchange.issuance import issue_licenses
from exchange.lake import LakeTable
from exchange.pipeline import ingest_source
from onehub.database import signer_for
from onehub.runtime import lake_upkeep
from sample_systems.generator import mutate

SOURCE = "dca_marriage"


def _change(deployment: Deployment, step: int) -> None:
    deployment.manifest = mutate(
        out_dir=deployment.settings.departments_dir,
        manifest=deployment.manifest,
        seed=100 + step,
        updates=4,
        inserts=3,
        now=dt.datetime(2026, 1, 1, 10, step),
        sources=[SOURCE],
    )


def test_compaction_and_vacuum_keep_the_lake_and_wait_for_issuance(
    deployment: Deployment,
) -> None:
    hub = deployment.hub
    license_type = hub.catalog.license_type(hub.catalog.source(SOURCE).license_type)
    lake = LakeTable(hub.lake_uri, license_type)
    signer = signer_for(hub)
    ingest_source(hub, SOURCE)
    issue_licenses(hub, signer)
    for step in (1, 2):
        _change(deployment, step)
        assert ingest_source(hub, SOURCE).rows_loaded == 7
        issue_licenses(hub, signer)
    _change(deployment, 3)
    ingest_source(hub, SOURCE)  # not issued yet: issuance is behind the lake
    rows, state, seq = lake.read(), lake.committed_state(SOURCE), lake.committed_seq(SOURCE)
    files = len(DeltaTable(lake.uri).file_uris())

    report = lake_upkeep(hub, retention_hours=0)[license_type.code]
    assert report["files_compacted"] > 0
    assert report["files_vacuumed"] is None  # postponed: the change feed is still needed
    assert len(DeltaTable(lake.uri).file_uris()) < files
    assert lake.read().sort_by("record_key").equals(rows.sort_by("record_key"))
    assert (lake.committed_state(SOURCE), lake.committed_seq(SOURCE)) == (state, seq)

    # Issuance still finds exactly the last batch's 7 changes through the compaction.
    caught_up = issue_licenses(hub, signer)
    assert caught_up.issued == {license_type.code: 7}

    report = lake_upkeep(hub, retention_hours=0)[license_type.code]
    assert report["files_vacuumed"] > 0
    assert lake.read().sort_by("record_key").equals(rows.sort_by("record_key"))
    assert (lake.committed_state(SOURCE), lake.committed_seq(SOURCE)) == (state, seq)
    assert issue_licenses(hub, signer).issued == {}
    assert ingest_source(hub, SOURCE).rows_in == 0  # the watermark survived both

    _change(deployment, 4)  # and the pipeline goes on after a vacuum
    assert ingest_source(hub, SOURCE).rows_loaded == 7
    assert issue_licenses(hub, signer).issued == {license_type.code: 7}


def test_vacuum_keeps_versions_within_the_retention(deployment: Deployment) -> None:
    hub = deployment.hub
    license_type = hub.catalog.license_type(hub.catalog.source(SOURCE).license_type)
    lake = LakeTable(hub.lake_uri, license_type)
    ingest_source(hub, SOURCE)
    _change(deployment, 1)
    ingest_source(hub, SOURCE)
    issue_licenses(hub, signer_for(hub))
    before = lake.version()
    report = lake_upkeep(hub, retention_hours=24)[license_type.code]
    assert report["files_vacuumed"] == 0  # everything replaced is younger than a day
    old = DeltaTable(lake.uri, version=before - 1)  # time travel still works
    assert old.to_pyarrow_table().num_rows == lake.count() - 3
    with pytest.raises(FatalError, match="negative"):
        lake.vacuum(-1)
