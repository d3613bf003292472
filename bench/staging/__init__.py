"""Raw → typed staging for five models of one mixed event stream (`python -m bench.staging`)."""
