def app(environ, start_response):
    body = f"wsgi script_name={environ.get('SCRIPT_NAME', '')} path={environ['PATH_INFO']}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
