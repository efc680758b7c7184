"""The web console: API, pages, websocket hub and overlays."""
