"""Loaders: one module per source format, each returning a :class:`kgrec.KnowledgeGraph`."""
