"""Queries of a neural map: the query engine (density and gradient at any Å position, values on grids) with
one evaluator per region kind (``nemap.engine.kinds``: splines in NumPy, SIREN networks in torch, imported only
when a SIREN map is evaluated), and the baked map for bulk queries."""
