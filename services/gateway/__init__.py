"""The public HTTP/JSON gateway (Flask behind granian): see docs/gateway.md."""
