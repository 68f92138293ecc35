"""Version data/ with DVC: pull it, rebuild it when the remote lacks it, switch versions."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.config import Params, Settings
from app.data.build import base_version, build_version, replace_dir, staging_dir, version_name
from app.data.validate import check

log = logging.getLogger(__name__)


class DvcError(RuntimeError):
    """A dvc command failed; the message holds the command and what DVC said."""


class DataVersionMismatch(RuntimeError):
    """Rebuilt data does not hash to the md5 pinned in data.dvc."""


@dataclass(frozen=True)
class PinnedVersion:
    """What data.dvc records: the version name and DVC's md5 of the data folder."""

    version: str
    md5: str
    nfiles: int


def dvc(*args: str, repo: Path) -> str:
    """Run a dvc command in `repo` with this interpreter's DVC; return its output."""
    command = [sys.executable, "-m", "dvc", *args]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        # DVC ends with the line that matters; before it may come hundreds of file hashes.
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DvcError(f"`dvc {' '.join(args)}` failed in {repo}: " + " ".join(said))
    return done.stdout


def read_pin(dvc_file: Path) -> PinnedVersion:
    """Read the version name and md5 that a .dvc file pins."""
    spec = yaml.safe_load(dvc_file.read_text())
    out = spec["outs"][0]
    version = (spec.get("meta") or {}).get("version", "unknown")
    return PinnedVersion(version=version, md5=out["md5"], nfiles=out["nfiles"])


def write_version_meta(dvc_file: Path, version: str, **more: str | int) -> None:
    """Record the version name (and `more` about it) in the .dvc file's `meta`, which DVC keeps
    across `dvc add`."""
    spec = yaml.safe_load(dvc_file.read_text())
    spec["meta"] = {"version": version, **more}
    dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))


def dir_md5(folder: Path) -> str:
    """DVC's md5 of a folder (`<md5>.dir`), computed without touching any DVC cache."""
    # Imported here: the API image, which imports this package, carries no DVC.
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    tree = Tree()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        tree.add(path.relative_to(folder).parts, None, HashInfo("md5", digest))
    tree.digest()
    assert tree.hash_info.value, "an empty tree has no md5"
    return tree.hash_info.value


def holds_pinned(settings: Settings) -> bool:
    """Whether data/ holds exactly what data.dvc pins, by DVC's md5 of the folder. Runs no DVC
    command, so it works on a read-only checkout (the compose retrainer's `/repo` mount), where
    `dvc status` cannot take its lock."""
    return (
        settings.data_dir.is_dir() and dir_md5(settings.data_dir) == read_pin(settings.dvc_file).md5
    )


def is_clean(repo: Path) -> bool:
    """True when the workspace matches every .dvc file (`dvc status` has nothing to say)."""
    return json.loads(dvc("status", "--json", repo=repo) or "{}") == {}


def configure_remote(settings: Settings) -> None:
    """Point the default remote at settings.dvc_remote_url (in .dvc/config.local) if it differs."""
    name, url = settings.dvc_remote_name, settings.dvc_remote_url
    try:
        current = dvc("config", f"remote.{name}.url", repo=settings.root).strip()
        default = dvc("config", "core.remote", repo=settings.root).strip()
    except DvcError:  # not configured yet
        current = default = ""
    if default != name or Path(current).expanduser() != Path(url).expanduser():
        dvc("remote", "add", "--local", "--force", "--default", name, url, repo=settings.root)


def ensure_data(settings: Settings, params: Params) -> str:
    """Make `data/` hold the version data.dvc pins: pull it, or rebuild, verify and push it.

    Returns what was done: "present", "pulled" or "rebuilt".
    """
    repo, data_dir = settings.root, settings.data_dir
    configure_remote(settings)
    pin = read_pin(settings.dvc_file)
    if data_dir.exists():
        if not is_clean(repo):
            raise DvcError(
                f"{data_dir} differs from {settings.dvc_file.name} ({pin.version}): keep your "
                "change with `dvc add data`, or discard it with `dvc checkout --force data`"
            )
        dvc("push", repo=repo)  # cheap when the remote has it already
        return "present"
    try:
        dvc("pull", repo=repo)
        return "pulled"
    except DvcError as error:
        if base_version(pin.version) != pin.version:
            raise DvcError(
                f"{error}\n{pin.version} holds labels from the field: no recipe can rebuild it, "
                "only the remote it was pushed to has it (check the remote's URL in .dvc/config)"
            ) from None
        log.info("%s\nThe remote lacks %s: rebuilding it from its recipe.", error, pin.version)
    with staging_dir(data_dir) as staging:
        build_version(params.data, pin.version, staging)
        built = dir_md5(staging)
        if built != pin.md5:
            raise DataVersionMismatch(
                f"rebuilt {pin.version} hashes to {built}, but data.dvc pins {pin.md5}: the "
                "recipe (params.yaml, library versions) no longer makes the pinned data"
            )
        replace_dir(staging, data_dir)
    dvc("commit", "--force", settings.dvc_file.name, repo=repo)  # fill the cache to push from
    dvc("push", repo=repo)
    return "rebuilt"


def switch_version(settings: Settings, params: Params, version: str | int) -> PinnedVersion:
    """Build and validate a version, swap it in as data/, record it (`dvc add`, `dvc push`)."""
    name = version_name(version)
    configure_remote(settings)
    with staging_dir(settings.data_dir) as staging:
        build_version(params.data, name, staging)
        check(staging, params.validation)  # bad data never replaces good data
        replace_dir(staging, settings.data_dir)
    dvc("add", "data", repo=settings.root)
    write_version_meta(settings.dvc_file, name)
    dvc("push", repo=settings.root)
    return read_pin(settings.dvc_file)
