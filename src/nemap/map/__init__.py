"""The opened map: ``nemap.open(path)`` → :class:`~nemap.map.neuralmap.NeuralMap`, which reads a file through
``nemap.format``, answers queries through ``nemap.engine``, and offers graphs (``nemap.graph``) and the file's
resolution evidence. Nothing here needs torch unless the map's regions are SIREN networks."""
