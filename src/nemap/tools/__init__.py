"""What users run, as library functions: convert (MRC ⇄ .nemap), describe a file, simulate (molmap),
plot a slice. The command line (``nemap.cli``) is a thin layer over these."""
