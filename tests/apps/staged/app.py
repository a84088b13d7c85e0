"""Two WSGI apps in one module, so APP_MODULE picks which one runs."""

import os


def _respond(start_response, text):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]


def app(environ, start_response):
    return _respond(start_response, f"app1 bucket={os.environ.get('BUCKET', '-')}")


def app2(environ, start_response):
    return _respond(start_response, f"app2 bucket={os.environ.get('BUCKET', '-')}")
