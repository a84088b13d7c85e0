async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"asgi root_path={scope.get('root_path', '')} path={scope['path']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
