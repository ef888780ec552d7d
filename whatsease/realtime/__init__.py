"""Real-time delivery: the WebSocket protocol, the hub of live sockets."""
