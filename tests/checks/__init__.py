"""The Great Expectations suite run on real DataFrames (GX import and validation cost ~15 s: kept out of the unit tier)."""
