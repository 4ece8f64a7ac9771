"""Plain reporting code: comparison tables over seeds and figure builders (matplotlib, Agg)."""
