"""Hand-written folders in the licensed data sets' file formats, written per test into
tmp_path rather than kept as files named like the data sets'. Every id, title, zip code and
timestamp is made up.

- ``"kgat"`` (four users, three items, five entities): a duplicate interaction, a test pair
  also in train, a user only in test, a user with an empty train line, a duplicate triple.
- ``"ml-1m"`` (``::``-separated, latin-1 ``movies.dat``, ``users.dat``): a latin-1 title,
  ``:`` inside a ``::`` file, a title without a year.
- ``"ml-10m"`` (half-star ratings, ``tags.dat``): ``(no genres listed)``, one tag written two
  ways, a tag on an unknown movie."""

from __future__ import annotations

from pathlib import Path

KGAT: dict[str, str] = {
    "entity_list.txt": "org_id remap_id\nm.a 0\nm.b 1\nm.c 2\nm.x 3\nm.y 4\n",
    "item_list.txt": "org_id remap_id freebase_id\nB00 0 m.a\nB01 1 m.b\nB02 2 m.c\n",
    "kg_final.txt": "0 0 3\n1 0 3\n3 1 4\n2 1 1\n0 0 3\n",
    "relation_list.txt": ("org_id remap_id\nhttp://rdf.freebase.com/ns/book.author.works 0\n"
                          "http://rdf.freebase.com/ns/type.object.type 1\n"),
    "test.txt": "0 2\n1 2 0\n2 1\n",
    "train.txt": "0 0 1 1\n1 2\n3 \n",
    "user_list.txt": "org_id remap_id\nU0 0\nU1 1\nU2 2\nU3 3\n",
}

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

LAYOUTS: dict[str, dict[str, str] | dict[str, bytes]] = {"kgat": KGAT, "ml-1m": ML_1M, "ml-10m": ML_10M}


def write_mini(folder: Path, layout: str) -> Path:
    """Write the ``layout`` files (a key of :data:`LAYOUTS`) into ``folder`` (created); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in LAYOUTS[layout].items():
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return folder
