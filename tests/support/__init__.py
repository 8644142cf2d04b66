"""Support code for kgrec's tests (no tests here): the Neo4j test server and its launcher
project (``neo4j-server/``), the store contract's checks, the small real model, the hand-written
mini data sets and the pinned run. Test modules import it as ``support.<module>``: pytest puts
``tests/`` on ``sys.path`` because ``tests/conftest.py`` sits in a folder without ``__init__.py``."""
