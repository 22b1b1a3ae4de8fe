"""DC Data Baker: bakes election lookups (address -> ballots) into one parquet file per outcode."""
