"""Hand-written MovieLens-format folders in the 1M layout (``::``-separated, latin-1
``movies.dat``, ``users.dat``) and the 10M layout (half-star ratings, ``tags.dat``). The ids,
titles, zip codes and timestamps are made up; they exercise the loader's policies: a latin-1
title, ``:`` inside a ``::`` file, a title without a year, ``(no genres listed)``, one tag
written two ways, a tag on an unknown movie. Written per test into tmp_path rather than kept
as files named like the licensed data sets'."""

from __future__ import annotations

from pathlib import Path

ML_1M: dict[str, bytes] = {
    "movies.dat": ("1::Robot Garden (1995)::Animation|Children's|Comedy\n"
                   "2::Misérables, Les (1995)::Drama|Musical\n"
                   "3::Star Voyage: Part IV - A New Dawn (1977)::Action|Adventure|Fantasy|Sci-Fi\n"
                   "4::Untitled Pilot::Drama\n").encode("latin-1"),
    "ratings.dat": (b"1::1::5::960000101\n1::3::3::960000202\n2::2::4::960000303\n"
                    b"2::3::5::960000404\n3::1::4::960000505\n3::4::2::960000606\n"),
    "users.dat": b"1::F::1::10::48123\n2::M::56::16::70011\n3::M::25::15::55001\n",
}

ML_10M: dict[str, bytes] = {
    "movies.dat": ("1::Robot Garden (1995)::Adventure|Animation|Children|Comedy|Fantasy\n"
                   "2::Amélie in the Rain (2001)::Comedy|Romance\n"
                   "3::Night Diner (1994)::(no genres listed)\n").encode("utf-8"),
    "ratings.dat": b"5::1::1.5::830000101\n5::2::4.5::830000202\n6::2::3::830000303\n6::3::5::830000404\n",
    "tags.dat": (b"5::1::Pixar::1180000101\n6::1::pixar ::1180000202\n"
                 b"6::2::Paris: romance::1180000303\n6::9::orphan tag::1180000404\n"),
}


def write_movielens_mini(folder: Path, layout: str) -> Path:
    """Write the ``layout`` (``"1m"`` or ``"10m"``) files into ``folder`` (created); return it."""
    files = {"1m": ML_1M, "10m": ML_10M}[layout]
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
