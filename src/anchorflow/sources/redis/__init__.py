"""The `redis` source kind: readers drain Redis lists and streams into landing chunks; the loader
moves sealed chunks into `raw` (see `sources.chunks`)."""
