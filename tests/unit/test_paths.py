import pytest
from hypothesis import given
from hypothesis import strategies as st

from appyard.apps.paths import AppPath, glob_matches, parse_app_path, validate_glob
from appyard.errors import UserError

segment = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12
).filter(lambda s: not s.endswith(("_cl_stage", "_cl_preview")) and s != "_cl")


@pytest.mark.parametrize(
    ("raw", "domain", "path"),
    [
        ("/", "", "/"),
        ("/streamlit_app", "", "/streamlit_app"),
        ("/a/b/", "", "/a/b"),
        ("/a/b///", "", "/a/b"),
        ("nginxapp.localhost:/", "nginxapp.localhost", "/"),
        ("Example.COM:/x", "example.com", "/x"),
    ],
)
def test_valid_paths(raw: str, domain: str, path: str) -> None:
    assert parse_app_path(raw) == AppPath(domain, path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("app", "must start with /"),
        ("/a/../b", ". or .."),
        ("/a/./b", ". or .."),
        ("/a//b", "//"),
        ("/a\nb", "control characters"),
        ("/x_cl_stage", "reserved suffix"),
        ("/a/b_cl_preview", "reserved suffix"),
        ("/_cl", "reserved suffix"),
        ("/a b", "may only use"),
        (":/a", "empty domain"),
        ("bad_dom:/", "not a valid domain"),
        ("/a:b/c", "':' may only separate"),
    ],
)
def test_invalid_paths(raw: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("/", "/")):
        parse_app_path(raw)


@given(st.lists(segment, min_size=1, max_size=5))
def test_round_trip(segments: list[str]) -> None:
    raw = "/" + "/".join(segments)
    parsed = parse_app_path(raw)
    assert parsed.path == raw and parse_app_path(str(parsed)) == parsed


@given(
    st.lists(segment, max_size=3), st.sampled_from(["..", ".", ""]), st.lists(segment, max_size=3)
)
def test_dot_and_empty_segments_always_refused(pre: list[str], bad: str, post: list[str]) -> None:
    raw = "/" + "/".join([*pre, bad, *post])
    if bad == "" and not post:
        return  # a trailing slash is trimmed, not refused
    with pytest.raises(UserError):
        parse_app_path(raw)


@given(st.text(min_size=1).filter(lambda s: any(ord(c) < 32 for c in s)))
def test_control_characters_always_refused(text: str) -> None:
    with pytest.raises(UserError, match="control characters"):
        parse_app_path("/" + text)


def test_stage_path() -> None:
    assert str(parse_app_path("/app").stage) == "/app_cl_stage"
    assert str(parse_app_path("d.localhost:/").stage) == "d.localhost:/_cl_stage"


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("all", "x.com:/a", True),
        ("/team/*", "/team/a", True),
        ("/team/*", "/team/a/b", False),
        ("/team/**", "/team/a/b", True),
        ("/team/**", "/team", True),
        ("/team/*", "x.com:/team/a", False),
        ("*.com:/team/*", "x.com:/team/a", True),
        ("x.com:/", "x.com:/", True),
        ("/a?", "/ab", True),
        ("/a", "/a", True),
        ("/a/", "/a", True),
    ],
)
def test_globs(glob: str, path: str, expected: bool) -> None:
    assert glob_matches(validate_glob(glob), parse_app_path(path)) is expected


@given(st.lists(segment, min_size=1, max_size=4))
def test_double_star_matches_every_descendant(segments: list[str]) -> None:
    path = parse_app_path("/root/" + "/".join(segments))
    assert glob_matches("/root/**", path)
    assert glob_matches("/root/*", path) is (len(segments) == 1)


def test_bad_glob() -> None:
    with pytest.raises(UserError):
        validate_glob("team")
