"""A hand-written KGAT-format folder (four users, three items, five entities) that exercises
the loader's policies: a duplicate interaction, a test pair also in train, a user only in
test, a user with an empty train line, a duplicate triple. Written per test into tmp_path
rather than kept as files named like the licensed data set's."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "entity_list.txt": "org_id remap_id\nm.a 0\nm.b 1\nm.c 2\nm.x 3\nm.y 4\n",
    "item_list.txt": "org_id remap_id freebase_id\nB00 0 m.a\nB01 1 m.b\nB02 2 m.c\n",
    "kg_final.txt": "0 0 3\n1 0 3\n3 1 4\n2 1 1\n0 0 3\n",
    "relation_list.txt": ("org_id remap_id\nhttp://rdf.freebase.com/ns/book.author.works 0\n"
                          "http://rdf.freebase.com/ns/type.object.type 1\n"),
    "test.txt": "0 2\n1 2 0\n2 1\n",
    "train.txt": "0 0 1 1\n1 2\n3 \n",
    "user_list.txt": "org_id remap_id\nU0 0\nU1 1\nU2 2\nU3 3\n",
}


def write_kgat_mini(folder: Path) -> Path:
    """Write the files into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder
