"""DynamoDB full-table scans as a source kind: each scan is one snapshot, landed as one load.

`config` (its settings), `source` (the Source: plan, fetch, cursor), `client` (the signed Scan
call), `items` (AttributeValues → plain JSON records, the PII policy) and `scan` (segments in
parallel threads, gathered into the parts of one load).
"""
