"""Source and target connectors: where records are read from and written to."""
