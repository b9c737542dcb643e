"""HTTP adapters: read the request, call one service, render."""
