"""What the SDK and the server both know of the GenAI conventions (pure, no I/O)."""
