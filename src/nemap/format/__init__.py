"""The .nemap file itself (spec/0.1/nemap.md): geometry (index ⇄ Å), content types, tiling and blend
weights, the HDF5 reader/writer and validator with stable codes, the float64 reference evaluator, and
the errors and warnings of the whole library. NumPy, h5py and jsonschema only: no torch."""
