"""`anchorflow serve`: the long-running process of a project. For now it receives signed
webhooks (`app`, `signatures`, `deliveries`) and makes them durable in landing chunks
(`intake`, `landing`); `server` runs it under uvicorn."""
