"""The marts step of a run with nothing new loaded: nothing due against every mart rebuilt."""
