"""Deltaspace assets have one canonical name: an upload's asset event queues a consumer DAG scheduled on it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_deltaglider.assets import UPLOADS_ALIAS, canonical_uri, deltaspace_asset, release_asset
from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
from tests.airflow_runs import asset_events, conn_env, run_dag, store_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def test_canonical_names() -> None:
    assert canonical_uri("s3://artifacts/nightly/app/") == "s3://artifacts/nightly/app"
    assert canonical_uri("s3://artifacts/nightly/app") == "s3://artifacts/nightly/app"
    assert canonical_uri("s3://artifacts/") == canonical_uri("s3://artifacts") == "s3://artifacts"
    asset = deltaspace_asset("s3://artifacts/app/")
    assert (asset.name, asset.uri) == ("s3://artifacts/app", "s3://artifacts/app")
    op = DeltaGliderUploadOperator(task_id="u", source="x", dest="s3://artifacts/app/")
    assert [(o.name, o.uri) for o in op.outlets] == [("s3://artifacts/app", "s3://artifacts/app")]


def test_releases_are_an_asset_of_their_own_and_templated_uploads_report_through_the_alias() -> None:
    releases = release_asset("s3://artifacts/nightly/app/", "app-*.zip")
    assert (releases.name, releases.uri) == ("s3://artifacts/nightly/app/app-*.zip",) * 2
    assert releases.uri != deltaspace_asset("s3://artifacts/nightly/app/").uri  # no double runs per release
    with pytest.raises(ValueError, match="file-name pattern"):
        release_asset("s3://artifacts/nightly/app/", "sub/app-*.zip")
    op = DeltaGliderUploadOperator(task_id="u", source="x", dest="s3://{{ params.bucket }}/app/")
    assert [type(o).__name__ for o in op.outlets] == ["AssetAlias"] and op.outlets[0].name == UPLOADS_ALIAS
    assert DeltaGliderUploadOperator(task_id="n", source="x", dest="s3://{{ b }}/a/", outlets=[]).outlets == []


@pytest.mark.parametrize("consumer_asset", ["s3://{b}/app", "s3://{b}/app/"])
def test_upload_event_queues_the_consumer_dag(
    moto_s3: Any, builds: Any, monkeypatch: pytest.MonkeyPatch, consumer_asset: str
) -> None:
    """The consumer is parsed first (the order that used to break the producer), on the plain canonical Asset
    or on the helper given the URL with its slash."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.sdk import DAG, Asset
    from airflow.utils.session import create_session

    name, value = conn_env("dg_assets", moto_s3)
    monkeypatch.setenv(name, value)
    b = moto_s3.bucket
    url = consumer_asset.format(b=b)
    watched = Asset(url) if not url.endswith("/") else deltaspace_asset(url)
    consumer_id = f"consumer_{abs(hash(url)) % 10**8}"
    with DAG(consumer_id, schedule=[watched], start_date=START) as consumer:
        DeltaGliderUploadOperator(task_id="noop", source="x", dest=f"s3://{b}/elsewhere/{{{{ ds }}}}/")
    store_dag(consumer)
    with DAG(f"producer_{consumer_id}", schedule=None, start_date=START) as producer:
        DeltaGliderUploadOperator(
            task_id="upload", source=str(builds(0)), dest=f"s3://{b}/app/", deltaglider_conn_id="dg_assets"
        )
    result = run_dag(producer)
    assert result.states == {"upload": "success"}, result.errors
    assert asset_events(f"s3://{b}/app")[-1]["count"] == 1
    with create_session() as session:
        queued = session.query(AssetDagRunQueue).filter_by(target_dag_id=consumer_id).count()
    assert queued == 1  # the scheduler will start exactly one consumer run for this event
