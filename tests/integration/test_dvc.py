"""DVC for real: throwaway git repositories with a local remote, driven by the dvc CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from app.data import dir_md5, dvc, ensure_data, is_clean, read_pin, switch_version
from app.data.dvc import DataVersionMismatch, DvcError
from tests.helpers import file_bytes

pytestmark = pytest.mark.integration


def cloud_in_sync(settings) -> bool:
    """True when the remote holds every object data.dvc needs."""
    return json.loads(dvc("status", "--cloud", "--json", repo=settings.root) or "{}") == {}


@pytest.fixture
def pinned_repo(dvc_repo, params):
    """A repository whose data.dvc pins v1, pushed to its remote."""
    switch_version(dvc_repo, params, "v1")
    return dvc_repo


def forget_local_copies(settings) -> None:
    """What a fresh clone looks like: no data/, no cache."""
    shutil.rmtree(settings.data_dir)
    shutil.rmtree(settings.root / ".dvc" / "cache")


def test_round_trip_add_push_delete_pull(dvc_repo, v1_dir, tmp_path):
    shutil.copytree(v1_dir, dvc_repo.data_dir)
    dvc("remote", "add", "--default", "store", str(tmp_path / "remote"), repo=dvc_repo.root)
    dvc("add", "data", repo=dvc_repo.root)
    dvc("push", repo=dvc_repo.root)
    forget_local_copies(dvc_repo)
    dvc("pull", repo=dvc_repo.root)
    assert file_bytes(dvc_repo.data_dir) == file_bytes(v1_dir)
    assert read_pin(dvc_repo.dvc_file).md5 == dir_md5(v1_dir)


def test_switch_version_records_and_pushes(pinned_repo, params):
    v1 = read_pin(pinned_repo.dvc_file)
    v2 = switch_version(pinned_repo, params, 2)
    assert (v1.version, v2.version) == ("v1", "v2")
    assert v2.md5 != v1.md5 and v2.nfiles > v1.nfiles
    assert v2.md5 == dir_md5(pinned_repo.data_dir)
    assert is_clean(pinned_repo.root) and cloud_in_sync(pinned_repo)


def test_switch_to_an_unknown_version_keeps_the_data(pinned_repo, params):
    before = file_bytes(pinned_repo.data_dir)
    pin = pinned_repo.dvc_file.read_text()
    with pytest.raises(ValueError, match="unknown dataset version 'v7'"):
        switch_version(pinned_repo, params, 7)
    assert file_bytes(pinned_repo.data_dir) == before
    assert pinned_repo.dvc_file.read_text() == pin
    assert not list(pinned_repo.root.glob(".data-*"))


def test_ensure_pulls_when_the_remote_has_the_data(pinned_repo, params):
    expected = file_bytes(pinned_repo.data_dir)
    forget_local_copies(pinned_repo)
    assert ensure_data(pinned_repo, params) == "pulled"
    assert file_bytes(pinned_repo.data_dir) == expected


def test_ensure_rebuilds_verifies_and_pushes_when_the_remote_is_empty(pinned_repo, params):
    forget_local_copies(pinned_repo)
    shutil.rmtree(pinned_repo.dvc_remote_url)
    assert ensure_data(pinned_repo, params) == "rebuilt"
    assert is_clean(pinned_repo.root) and cloud_in_sync(pinned_repo)
    assert ensure_data(pinned_repo, params) == "present"


def test_ensure_fails_loudly_when_the_rebuild_does_not_match(pinned_repo, params):
    forget_local_copies(pinned_repo)
    shutil.rmtree(pinned_repo.dvc_remote_url)
    spec = yaml.safe_load(pinned_repo.dvc_file.read_text())
    spec["outs"][0]["md5"] = "0" * 32 + ".dir"
    pinned_repo.dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(DataVersionMismatch, match="rebuilt v1 hashes to .* but data.dvc pins 0000"):
        ensure_data(pinned_repo, params)
    assert not pinned_repo.data_dir.exists()  # nothing unverified is left behind


def test_ensure_never_overwrites_local_changes(pinned_repo, params):
    victim = sorted((pinned_repo.data_dir / "train" / "0").glob("*.png"))[0]
    victim.write_bytes(b"my edit")
    with pytest.raises(DvcError, match="differs from data.dvc"):
        ensure_data(pinned_repo, params)
    assert victim.read_bytes() == b"my edit"


def test_dvc_errors_name_the_command_and_the_cause(dvc_repo):
    with pytest.raises(DvcError, match="`dvc add no-such-folder` failed in .*does not exist"):
        dvc("add", "no-such-folder", repo=dvc_repo.root)
