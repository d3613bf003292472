"""The `async_export` kind: APIs that export in the background (request an export, poll its
status, download the file it names), with presets for known APIs (MaestroQA)."""
