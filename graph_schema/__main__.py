"""``python -m kgrec.graph_schema`` rewrites the generated DDL / vocabulary files beside the schema."""

from pathlib import Path

from kgrec.graph_schema import generated_files

here = Path(__file__).parent
for fname, text in generated_files().items():
    (here / fname).write_text(text, encoding="utf-8")
    print("wrote", here / fname)
