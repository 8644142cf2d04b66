"""Bad input for batch cold start: every bad batch is refused whole, with the row and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

import kgrec
from kgrec.cold_start.validation import prepare_new_nodes
from kgrec.errors import DataError


@pytest.fixture(scope="module")
def ml(ml100k_dir):
    return kgrec.loaders.movielens(ml100k_dir)


def test_new_items_get_template_text_and_unknown_attributes_become_entities(ml):
    new = pd.DataFrame({"item_id": ["n1", "n2"], "title": ["Space Robots (2030)", None],
                        "genres": ["Sci-Fi|Action", "Comedy|Mumblecore"]})
    batch = prepare_new_nodes(ml, "item", new, attributes={"genres": "genre"})
    assert batch.ids == ["n1", "n2"]
    assert batch.nodes.loc[0, "text"] == "Space Robots (2030). Genre: Sci-Fi, Action"
    assert batch.entities["entity_id"].tolist() == ["genre:Mumblecore"]
    assert batch.entities.loc[0, "text"] == "genre: Mumblecore"
    assert batch.report["new_entities"] == 1 and batch.report["new_knowledge_edges"] == 4


def test_existing_id_is_an_error_unless_update(ml):
    with pytest.raises(DataError, match=r"row 0: item '1' already exists.*update=True"):
        prepare_new_nodes(ml, "item", pd.DataFrame({"item_id": ["1"], "title": ["x"]}))
    batch = prepare_new_nodes(ml, "item", pd.DataFrame({"item_id": ["1"], "title": ["x"]}), update=True)
    assert batch.replaced == ["1"] and batch.report["updated_items"] == 1


def test_item_with_neither_text_nor_attributes_is_an_error(ml, tmp_path):
    path = tmp_path / "new_items.csv"
    path.write_text("item_id,title\nok,Fine Title\nbad,\n")
    with pytest.raises(DataError, match=r"new_items.csv row 3: item 'bad' has neither text nor attributes\. Fix"):
        prepare_new_nodes(ml, "item", path)


def test_item_with_only_triples_is_allowed(ml, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("item_id\nx9\n")
    triples = tmp_path / "triples.csv"
    triples.write_text("head,relation,tail\nx9,HAS_GENRE,genre:Drama\n")
    batch = prepare_new_nodes(ml, "item", items, triples=triples)
    assert batch.nodes.loc[0, "text"] == "x9. Genre: Drama"
    assert batch.report["new_entities"] == 0


@pytest.mark.parametrize("content,match", [
    ("item_id,title\n", "no items in the table"),
    ("item_id,title\nq,A\nq,B\n", r"row 3: item 'q' appears twice"),
    ("item_id,title\n,A\n", r"row 2: item_id is empty"),
    ("id;title\nq;A\n", r"row 1: required column\(s\) \['item_id'\] not found.*sep=';'"),
])
def test_malformed_item_tables(ml, tmp_path, content, match):
    path = tmp_path / "items.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        prepare_new_nodes(ml, "item", path)


def test_triples_must_belong_to_the_batch(ml, tmp_path):
    items = pd.DataFrame({"item_id": ["n1"], "title": ["New"]})
    triples = tmp_path / "t.csv"
    triples.write_text("head,relation,tail\nn1,HAS_GENRE,genre:Drama\n50,HAS_GENRE,genre:Drama\n")
    with pytest.raises(DataError, match=r"t.csv row 3: triple \(50, HAS_GENRE, genre:Drama\) names none of the new items"):
        prepare_new_nodes(ml, "item", items, triples=triples)


def test_new_users_with_interactions_checked(ml, tmp_path):
    users = pd.DataFrame({"user_id": ["u_new"], "occupation": ["writer"]})
    inter = tmp_path / "inter.csv"
    inter.write_text("user_id,item_id\nu_new,50\nu_new,999999\n")
    with pytest.raises(DataError, match=r"inter.csv row 3: item '999999' is unknown"):
        prepare_new_nodes(ml, "user", users, interactions=inter, attributes={"occupation": "occupation"})
    inter.write_text("user_id,item_id\nu_new,50\n")
    batch = prepare_new_nodes(ml, "user", users, interactions=inter, attributes={"occupation": "occupation"})
    assert batch.nodes.loc[0, "text"] == "User. Occupation: writer"
    assert batch.interactions["item_id"].tolist() == ["50"]


def test_triples_naming_unknown_entities_warn_with_the_closest_known_or_fail_when_strict(ml):
    """'Sci-Fi' where the graph has 'genre:Sci-Fi': a warning that names the known id (the new
    node is still made), and with strict=True an error at the triple's row that adds nothing."""
    from kgrec.errors import UnknownEntityWarning

    new = pd.DataFrame({"item_id": ["n1"], "title": ["Space Robots (2030)"]})
    trip = pd.DataFrame({"head": ["n1", "n1"], "relation": ["HAS_GENRE", "HAS_GENRE"],
                         "tail": ["genre:Action", "Sci-Fi"]})
    with pytest.warns(UnknownEntityWarning, match=r"'Sci-Fi' \(closest known: genre:Sci-Fi"):
        batch = prepare_new_nodes(ml, "item", new, triples=trip)
    assert batch.entities["entity_id"].tolist() == ["Sci-Fi"]
    with pytest.raises(DataError, match=r"row 1: 1 entity named by the triples is not in the trained graph.*"
                                        r"genre:Sci-Fi.*Fix"):
        prepare_new_nodes(ml, "item", new, triples=trip, strict=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownEntityWarning)  # known entities only: no warning
        prepare_new_nodes(ml, "item", new, triples=trip.iloc[:1])


def test_new_nodes_reuse_the_text_and_attribute_columns_of_training():
    """A graph built with from_tables(item_text=("title", "genres"), item_attributes=...) gives a
    batch with the same columns the same text and the same attribute edges, unless told otherwise."""
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"]})
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Alien", "Heat"], "genres": ["Sci-Fi|Horror", "Crime"]})
    kg = kgrec.from_tables(inter, items=items, item_text=("title", "genres"), item_attributes={"genres": "genre"})
    assert kg.text_recipe == {"item": {"text": ["title", "genres"], "attributes": {"genres": "genre"}}}
    trained_text = kg.items.set_index("item_id").loc["a", "text"]
    new = pd.DataFrame({"item_id": ["c"], "title": ["Alien"], "genres": ["Sci-Fi|Horror"]})
    batch = prepare_new_nodes(kg.with_interactions(kg.interactions), "item", new)
    assert batch.nodes.loc[0, "text"] == trained_text
    assert sorted(batch.triples["tail"]) == ["genre:Horror", "genre:Sci-Fi"] and len(batch.entities) == 0
    told = prepare_new_nodes(kg, "item", new, text="title", attributes={})
    assert told.nodes.loc[0, "text"] != trained_text and len(told.triples) == 0
    other_columns = prepare_new_nodes(kg, "item", pd.DataFrame({"item_id": ["d"], "name": ["Up"]}))
    assert other_columns.nodes.loc[0, "name"] == "Up"
