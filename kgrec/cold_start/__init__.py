"""Cold start: new items and users that have text and attributes but no history.

``validation.py`` checks a batch before anything is added; ``placement.py`` places the batch's
nodes with the trained model, frozen (how new items and users get their vectors);
``protocol.py`` holds the helpers of the cold-start evaluation protocol (taking nodes out of a
graph, their triples, users' first interactions). Training's side of cold start is
:mod:`kgrec.train.cold_views` and :mod:`kgrec.train.calibration`.
"""
