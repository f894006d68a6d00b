"""Fitting: a voxel grid in, neural-map content out (presets and options, normalization, the region
plan, training loops, resume store, fidelity report). Knows no file format."""
