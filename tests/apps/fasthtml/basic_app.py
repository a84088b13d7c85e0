from fasthtml.common import P, Titled, fast_app

app, rt = fast_app()


@rt("/")
def get():
    return Titled("FastHTML on appyard", P("hello from fasthtml"))
