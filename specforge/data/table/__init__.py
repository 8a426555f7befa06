"""Tables of named columns (CSV, Parquet): reading, fitted feature and target steps, the source, ``data info``."""
