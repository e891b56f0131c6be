"""HTTP, SSE and WebSocket adapters over the application services."""
