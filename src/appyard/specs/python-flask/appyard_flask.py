"""Load the app's Flask object and serve it under CL_APP_PATH, without touching its code.

Flask finds the app as `flask run` would (FLASK_APP, else app.py / wsgi.py); requests under
the app path get SCRIPT_NAME set, so routes and url_for() work below a path prefix.
"""

import os

from flask.cli import ScriptInfo

app = ScriptInfo(app_import_path=os.environ.get("FLASK_APP") or None).load_app()
_prefix = os.environ.get("CL_APP_PATH", "").rstrip("/")


class _PrefixMiddleware:
    def __init__(self, wsgi_app, prefix):
        self.wsgi_app = wsgi_app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.wsgi_app(environ, start_response)


if _prefix:
    app.wsgi_app = _PrefixMiddleware(app.wsgi_app, _prefix)
