"""Resolution: Fourier shell correlation of two maps (``fsc``) and local resolution in windows (``locres``)."""
