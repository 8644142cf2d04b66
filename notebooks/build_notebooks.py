"""Writes the notebooks in this folder from the cells below (``python notebooks/build_notebooks.py``),
so that their source stays reviewable as plain Python. CI executes the .ipynb files."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = '''import os
from pathlib import Path

import kgrec
from kgrec.settings import data_dir

DATA = data_dir()  # KGREC_DATA_DIR, default ../shared/data
# KGREC_NOTEBOOK_EPOCHS lets CI run these notebooks with a short training budget;
# leave it unset to train with kgrec's defaults.
EPOCHS = {"epochs": int(os.environ["KGREC_NOTEBOOK_EPOCHS"])} if os.environ.get("KGREC_NOTEBOOK_EPOCHS") else {}'''

quickstart = new_notebook(cells=[
    new_markdown_cell("# kgrec quickstart\n\nLoad MovieLens-100K as a knowledge graph, train the GNN recommender "
                      "on LM text features, evaluate it with full ranking, look at one user's recommendations and "
                      "at *why* one of them was made, then score brand-new movies without retraining."),
    new_code_cell(SETUP),
    new_markdown_cell("## 1. The graph\nUsers, movies and their attributes (genres, release year, age group, "
                      "gender, occupation, zip prefix) in one graph; every node has a text the encoder reads."),
    new_code_cell('kg = kgrec.loaders.movielens(DATA / "ml-100k")\nprint(kg.summary())\nkg.items.head(3)'),
    new_markdown_cell("## 2. Train and evaluate\nA random 80/20 split per user; ranking is over all items, "
                      "each user's training items excluded."),
    new_code_cell('train, test = kg.split("random", test=0.2, seed=0)\n'
                  'rec = kgrec.Recommender(**EPOCHS).fit(train)\n'
                  'ks = (5, 10, 20, 50)\n'
                  'metrics = rec.evaluate(test, k=ks)\n'
                  '{k: round(v, 4) for k, v in metrics.items() if k.startswith(("recall", "ndcg"))}'),
    new_code_cell('import matplotlib.pyplot as plt\n\n'
                  'fig, ax = plt.subplots(figsize=(5, 3.2))\n'
                  'for name in ("recall", "ndcg"):\n'
                  '    ax.plot(ks, [metrics[f"{name}@{k}"] for k in ks], marker="o", label=name.upper() + "@K")\n'
                  'ax.set_xlabel("K"); ax.set_ylabel("score"); ax.set_title("kgrec on MovieLens-100K")\n'
                  'ax.legend(); ax.grid(alpha=0.3)\nplt.show()'),
    new_markdown_cell("## 3. Recommendations, in your ids"),
    new_code_cell('top = rec.recommend(["1"], k=10)\n'
                  'top.assign(title=rec.item_names(top["item_id"]))'),
    new_markdown_cell("## 4. Why? Paths ranked by their share of the score\nThe score is a dot product of "
                      "the GNN's user and item representations; it decomposes exactly over the item's "
                      "neighbours, and each path carries the share of the neighbour it enters the item through."),
    new_code_cell('item = top["item_id"].iloc[0]\nwhy = rec.explain("1", item, top=8)\nwhy[["rank", "kind", "path", "weight", "share"]]'),
    new_code_cell('import networkx as nx\n\n'
                  'G = nx.DiGraph()\n'
                  'names = lambda t, i: rec.item_names([i])[0] if t == "item" else (f"user {i}" if t == "user" else i)\n'
                  'for row in why[why["nodes"].map(len) > 1].itertuples():\n'
                  '    labels = [names(t, i) for t, i in row.nodes]\n'
                  '    for a, b in zip(labels, labels[1:]):\n'
                  '        G.add_edge(a, b, weight=max(row.weight, 1e-4))\n'
                  'colors = ["tab:orange" if n.startswith("user") else "tab:blue" if ":" not in n else "tab:green" for n in G]\n'
                  'fig, ax = plt.subplots(figsize=(9, 6))\n'
                  'pos = nx.spring_layout(G, seed=0)\n'
                  'widths = [1 + 40 * G[a][b]["weight"] for a, b in G.edges]\n'
                  'nx.draw_networkx(G, pos, ax=ax, node_color=colors, width=widths, font_size=8, node_size=500)\n'
                  'ax.set_title(f"why {names(\'item\', item)} for user 1"); ax.axis("off")\nplt.show()'),
    new_markdown_cell("## 5. Cold start: new movies, no retraining\nNew items with a title and genres get "
                      "representations from the trained GNN (their text plus their genre edges); warm "
                      "rankings do not change except where a new item enters them."),
    new_code_cell('import pandas as pd\n\n'
                  'new = pd.DataFrame({"item_id": ["new-1", "new-2"],\n'
                  '                    "title": ["Galaxy Patrol (1998)", "The Little Lighthouse (1998)"],\n'
                  '                    "genres": ["Sci-Fi|Action|Adventure", "Animation|Children\'s"]})\n'
                  'rec.add_items(new, attributes={"genres": "genre"})\n'
                  'rec.recommend(["1", "2", "3"], k=1, candidates=["new-1", "new-2"])'),
    new_code_cell('rec.save("quickstart-model")\nkgrec.Recommender.load("quickstart-model").recommend(["1"], k=3)'),
])

inspect = new_notebook(cells=[
    new_markdown_cell("# Inspecting recommendations with Cypher\n\nPublish the graph, its features and a "
                      "model's recommendations with their explanation paths to the embedded store (a file), "
                      "then ask questions in Cypher. The same queries run unchanged on Neo4j."),
    new_code_cell(SETUP),
    new_code_cell('kg = kgrec.loaders.movielens(DATA / "ml-100k")\n'
                  'train, test = kg.split("random", test=0.2, seed=0)\n'
                  'rec = kgrec.Recommender(**EPOCHS).fit(train)'),
    new_code_cell('import shutil\n\n'
                  'shutil.rmtree("inspect.db", ignore_errors=True)\n'
                  'store = kgrec.open_store("inspect.db")\n'
                  'rec.publish(store, k=20)\n'
                  'store.counts()'),
    new_markdown_cell("## Counts that must match the source files"),
    new_code_cell('store.query("MATCH (u:User) RETURN count(u) AS users")'),
    new_code_cell('store.query("MATCH (:User)-[r:INTERACTED]->(:Item) RETURN count(r) AS interactions")'),
    new_code_cell('store.query("MATCH (e:Entity) WHERE e.kind = $kind RETURN count(e) AS genres", kind="genre")'),
    new_markdown_cell("## One user's recommendations, and why"),
    new_code_cell('store.query("""\nMATCH (u:User {id: $u})-[r:RECOMMENDED]->(i:Item)\n'
                  'RETURN i.name AS title, r.score AS score, r.rank AS rank\nORDER BY r.rank LIMIT 10""", u="1")'),
    new_code_cell('store.query("""\nMATCH (u:User {id: $u})-[x:EXPLAINS]->(n)\n'
                  'RETURN x.item AS item, x.rank AS path_rank, x.path AS path, x.weight AS weight\n'
                  'ORDER BY item, path_rank LIMIT 12""", u="1")'),
    new_code_cell('from kgrec import inspection\n\n'
                  'item = store.query("MATCH (u:User {id: $u})-[r:RECOMMENDED]->(i:Item) WHERE r.rank = 1 RETURN i.id AS id", u="1")["id"][0]\n'
                  'inspection.why_recommended(store, "1", item, limit=5)'),
    new_markdown_cell("## What the model recommends most (popularity / coverage)"),
    new_code_cell('inspection.top_recommended(store, "kgrec", limit=10)'),
    new_code_cell('import matplotlib.pyplot as plt\n\n'
                  'top = inspection.top_recommended(store, "kgrec", limit=15)\n'
                  'fig, ax = plt.subplots(figsize=(6, 4))\n'
                  'ax.barh(top["name"][::-1], top["recommendations"][::-1])\n'
                  'ax.set_xlabel("users who got it in their top-20"); plt.tight_layout(); plt.show()'),
    new_markdown_cell("## Writes are refused\nQueries run in a read-only transaction; the store itself refuses "
                      "a write clause."),
    new_code_cell('try:\n    store.query("CREATE (:User {id: \'intruder\'})")\nexcept kgrec.StoreError as exc:\n'
                  '    print(type(exc).__name__, "-", exc)'),
    new_markdown_cell("## The same on Neo4j\nWith a server at `KGREC_NEO4J_URI` (e.g. `bolt://127.0.0.1:7687`), "
                      "publish there and run the very same Cypher."),
    new_code_cell('uri = os.environ.get("KGREC_NEO4J_URI")\n'
                  'if uri:\n'
                  '    with kgrec.open_store(uri) as neo:\n'
                  '        rec.publish(neo, k=20)\n'
                  '        print(neo.query("MATCH (u:User {id: $u})-[r:RECOMMENDED]->(i:Item) RETURN i.name AS title, r.rank AS rank ORDER BY r.rank LIMIT 5", u="1"))\n'
                  'else:\n'
                  '    print("KGREC_NEO4J_URI is not set: skipping the Neo4j part")'),
    new_code_cell('store.close()'),
])

for name, nb in (("quickstart.ipynb", quickstart), ("inspect_with_cypher.ipynb", inspect)):
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, HERE / name)
    print("wrote", HERE / name)
