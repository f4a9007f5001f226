"""The public HTTP/JSON gateway (Flask behind gunicorn): see docs/gateway.md."""
