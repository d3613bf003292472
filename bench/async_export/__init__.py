"""The async export benchmark: MaestroQA's export of 1M graded answers (a CSV in a ZIP) from the
emulator on loopback, request → poll → download → raw → staging, against the pandas method."""
