"""Other file formats: MRC/CCP4 maps in and out, atomic models (PDB/mmCIF through gemmi), graph files."""
