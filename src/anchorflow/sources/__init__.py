"""Source kinds behind one port (`base.Source`), registered in `registry`; one package per kind."""
