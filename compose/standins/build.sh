#!/usr/bin/env bash
# Stand-ins for the official images, built from Debian's packages, for a Docker engine that
# reaches Debian's mirror but no container registry (the workbook's CI machines). Each is
# tagged mlops-workbook-standin/<name>, never with an official name; compose takes them through
# the *_IMAGE variables this prints (one NAME=image per line). The base image is kept once
# built (mmdebstrap takes minutes); the stand-ins are built every time, which docker's cache
# makes a no-op (0.1 s) unless their files changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tag=mlops-workbook-standin
base="$tag/python:3.11-bookworm"

exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! exists "$base"; then
  # Debian 12's Python 3.11 with venv: what python:3.11-slim-bookworm offers our Dockerfile.
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,ca-certificates,python-is-python3,passwd \
    bookworm "$rootfs/rootfs.tar" >&2
  docker import --change 'CMD ["/bin/bash"]' "$rootfs/rootfs.tar" "$base" >/dev/null
fi
echo "PYTHON_IMAGE=$base"

for name in prometheus alertmanager postgres nginx; do
  image="$tag/$name:bookworm"
  docker build --quiet --build-arg "BASE=$base" -t "$image" "$here/$name" >&2
  echo "${name^^}_IMAGE=$image"
done
