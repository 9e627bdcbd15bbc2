"""The HTTP server's own layer beneath the routes: ports bound before anything starts
(ports.py), connections per process from the open-file limit (connections.py),
uvicorn's protocol with header timeouts and a connection cap (protocol.py), and every
request body bounded in size and time (request_bounds.py)."""
