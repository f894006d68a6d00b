"""Queries of a neural map: SIREN networks in torch, the query engine (density and gradient at any Å
position) and ``nemap.open`` → :class:`~nemap.engine.neuralmap.NeuralMap`. Torch is imported only when a
query is made."""
