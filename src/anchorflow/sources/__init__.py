"""One module per source kind. Each turns a window of its source into `LandBatch`es."""
