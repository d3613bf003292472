"""Signed webhooks against `anchorflow serve` on loopback: achieved rate, latency, lost requests.

The server runs in its own process (`anchorflow serve`, one Intercom-preset source); the load
generator (`bench.webhooks.load`) in another: a fixed schedule of signed deliveries (2,000/s for
30 s by default) over several keep-alive connections, each request's latency counted from the
moment the schedule says it is due (a late start counts against the server, not hidden). After a
graceful stop, every delivery answered 2xx is looked up in the published chunks: lost = answered
but not stored.
"""
