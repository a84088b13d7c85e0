from flask import Flask, url_for

app = Flask(__name__)


@app.route("/")
def index():
    return f"flask index, hello at {url_for('hello')}"


@app.route("/hello")
def hello():
    return "flask hello"
