"""Download a MovieLens archive from GroupLens, check its checksum, cache and extract it.

Only for users who are online; nothing in kgrec downloads on its own, and tests never reach
the network (they exercise the checksum and cache paths with local ``file://`` archives).
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from kgrec.settings import cache_dir as default_cache_dir
from kgrec.errors import DataError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
# name -> (url, "algorithm:hex digest"). sha256 as published in tensorflow_datasets'
# url_checksums/movielens.txt; ml-10m only has GroupLens' own md5 (ml-10m.zip.md5).
MOVIELENS_ARCHIVES: dict[str, tuple[str, str]] = {
    "ml-100k": (f"{GROUPLENS}/ml-100k.zip", "sha256:50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
    "ml-1m": (f"{GROUPLENS}/ml-1m.zip", "sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
    "ml-10m": (f"{GROUPLENS}/ml-10m.zip", "md5:ce571fd55effeba0271552578f2648bd"),
    "ml-20m": (f"{GROUPLENS}/ml-20m.zip", "sha256:96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
    "ml-25m": (f"{GROUPLENS}/ml-25m.zip", "sha256:8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
    "ml-latest-small": (f"{GROUPLENS}/ml-latest-small.zip",
                        "sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
}
_FOLDER_IN_ARCHIVE = {"ml-10m": "ml-10M100K"}
_MARKER = ".kgrec-verified"


def download_movielens(name: str = "ml-100k", cache_dir: str | Path | None = None, *, url: str | None = None,
                       sha256: str | None = None, timeout: float = 60.0) -> Path:
    """The folder of MovieLens data set ``name``, downloaded on first use.

    The archive is fetched from GroupLens (or ``url``), its checksum compared with the known
    one (or ``sha256``), kept under ``cache_dir`` (default ``kgrec.settings.cache_dir()/movielens``,
    i.e. ``$KGREC_CACHE_DIR`` or the user cache dir) and extracted there. Later calls find the
    verified folder and touch no network; an archive already in the cache is verified and
    extracted without downloading. Returns the folder to pass to :func:`movielens`.

    Raises :class:`kgrec.DataError` on a network failure (naming the URL, with how to download
    by hand), on a checksum mismatch (the bad file is removed) or on an unknown ``name``."""
    if name not in MOVIELENS_ARCHIVES and (url is None or sha256 is None):
        raise DataError(name, None, f"unknown MovieLens archive (known: {', '.join(MOVIELENS_ARCHIVES)})",
                        "pick a known name, or pass url= and sha256= for another archive")
    known_url, known_sum = MOVIELENS_ARCHIVES.get(name, ("", ""))
    url = url or known_url
    expected = f"sha256:{sha256.lower()}" if sha256 else known_sum
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "movielens"
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    marker = target / _MARKER
    if marker.exists() and marker.read_text().strip() == expected:
        return target  # cache hit: verified before

    archive = root / f"{name}.zip"
    if not (archive.exists() and _digest(archive, expected) == expected.split(":", 1)[1]):
        _fetch(url, archive, expected, timeout)
    _extract(archive, root, target, name)
    marker.write_text(expected + "\n")
    return target


def _fetch(url: str, archive: Path, expected: str, timeout: float) -> None:
    part = archive.with_suffix(".zip.part")
    algo, want = expected.split(":", 1)
    h = hashlib.new(algo)
    manual = (f"download {url} in a browser, unzip it and pass the folder (kgrec ... --data PATH, or "
              f"kgrec.loaders.movielens(PATH)); or put the .zip at {archive} and call again")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DataError(url, None, f"download failed ({reason})", f"check the network connection, or {manual}") from None
    got = h.hexdigest()
    if got != want:
        part.unlink(missing_ok=True)
        raise DataError(url, None, f"{algo} of the download is {got}, expected {want}",
                        "retry (the transfer may have been cut); if it repeats, the upstream archive changed: "
                        f"check it and pass sha256=, or {manual}")
    part.replace(archive)


def _digest(path: Path, expected: str) -> str:
    h = hashlib.new(expected.split(":", 1)[0])
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _extract(archive: Path, root: Path, target: Path, name: str) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        archive.unlink(missing_ok=True)
        raise DataError(str(archive), None, "not a zip archive (removed)", "call download_movielens again") from None
    with zf:
        members = zf.namelist()
        base = root.resolve()
        for m in members:  # no member may land outside the cache folder
            if not (root / m).resolve().is_relative_to(base):
                raise DataError(str(archive), None, f"archive member '{m}' points outside the folder",
                                "use the archive from GroupLens")
        tops = {m.split("/", 1)[0] for m in members if m.strip("/")}
        staging = root / f".{name}.extracting"
        shutil.rmtree(staging, ignore_errors=True)
        zf.extractall(staging)
    inner = _FOLDER_IN_ARCHIVE.get(name, name)
    src = staging / inner if (staging / inner).is_dir() else (staging / next(iter(tops)) if len(tops) == 1 and
                                                             (staging / next(iter(tops))).is_dir() else staging)
    shutil.rmtree(target, ignore_errors=True)
    src.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
