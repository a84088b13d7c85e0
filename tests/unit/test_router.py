from hypothesis import given
from hypothesis import strategies as st

from appyard.apps.paths import parse_app_path
from appyard.server.router import Router


def make(*paths: str) -> Router[str]:
    return Router((parse_app_path(p), p) for p in paths)


def test_longest_prefix_and_segment_boundary() -> None:
    r = make("/", "/a", "/a/b")
    assert r.lookup("h", "/a/b/c").target == "/a/b"
    assert r.lookup("h", "/a/bc").target == "/a"
    assert r.lookup("h", "/ab").target == "/"
    assert r.lookup("h", "/a").prefix == "/a"


def test_domain_apps_claim_their_host() -> None:
    r = make("/x", "d.com:/", "e.com:/only")
    assert r.lookup("d.com", "/x").target == "d.com:/"
    assert r.lookup("D.com:8080", "/x").target == "d.com:/"
    assert r.lookup("e.com", "/x") is None  # claimed host, no match there
    assert r.lookup("e.com", "/only/1").target == "e.com:/only"
    assert r.lookup("other", "/x/y").target == "/x"


def test_no_match() -> None:
    assert make("/a").lookup("h", "/b") is None
    assert make().lookup("h", "/") is None


@given(
    st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=6),
    st.lists(st.text("abc", min_size=1, max_size=3), max_size=8),
)
def test_matches_a_linear_scan(app_segments: list[str], request_segments: list[str]) -> None:
    apps = {"/" + "/".join(app_segments[:i]) for i in range(1, len(app_segments) + 1)}
    router = make(*apps)
    request = "/" + "/".join(request_segments)
    expected = max(
        (a for a in apps if request == a or request.startswith(a + "/")), key=len, default=None
    )
    found = router.lookup("h", request)
    assert (found.target if found else None) == expected


def test_deep_request_paths_are_cut_to_depth() -> None:
    r = make("/a")
    assert r.lookup("h", "/a" + "/x" * 1000).target == "/a"
