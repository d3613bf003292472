"""The `webhook` source kind: `anchorflow serve` checks each delivery's signature and appends its
records to landing chunks (`serve.intake`); the loader moves sealed chunks into `raw` (see
`sources.chunks`)."""
