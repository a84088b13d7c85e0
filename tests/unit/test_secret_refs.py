import pytest
from hypothesis import given
from hypothesis import strategies as st

from appyard.errors import UserError
from appyard.secrets.providers import parse_properties
from appyard.secrets.refs import SecretRef, parse, refs_in, render


def test_plain_text_has_no_refs() -> None:
    assert parse("postgres://u:p@db/x") == ["postgres://u:p@db/x"]
    assert parse("a } b { c }} d") == ["a } b { c }} d"]


def test_reference_inside_text() -> None:
    assert parse('postgres://u:{{secret "env" "DB_PASS"}}@db/x') == [
        "postgres://u:",
        SecretRef("env", "DB_PASS"),
        "@db/x",
    ]


def test_two_refs_spaces_and_default_provider() -> None:
    parts = parse('{{ secret "vault_prod" "A" }}-{{secret "B"}}')
    assert parts == [SecretRef("vault_prod", "A"), "-", SecretRef("", "B")]


def test_escapes() -> None:
    [ref] = refs_in(r'{{secret "p" "we\"ird\\key}}"}}')
    assert ref == SecretRef("p", 'we"ird\\key}}')
    assert parse(str(ref)) == [ref]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{{foo "a" "b"}}', "position 1: unknown function 'foo'"),
        ('x{{secret "a" "b"', "position 2: unterminated {{"),
        ('{{secret "a}}', "position 10: unterminated string"),
        ("{{}}", "position 1: expected secret"),
        ('{{secret a "b"}}', "position 10: expected a quoted string"),
        ('{{secret "a" "b" "c"}}', "position 18: expected }}"),
        ('{{secret "a\\q" "b"}}', "unknown escape"),
        ('{{secret "" "b"}}', "must not be empty"),
        ("{{", "position 1: expected secret after"),
    ],
)
def test_malformed_references_name_the_position(value: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse(value)


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(names, names)
def test_any_provider_and_key_round_trip(provider: str, key: str) -> None:
    ref = SecretRef(provider, key)
    assert parse(str(ref)) == [ref]
    assert parse(f"pre {ref} post {ref}") == ["pre ", ref, " post ", ref]


@given(st.text(alphabet=st.characters(blacklist_characters="{"), max_size=50))
def test_text_without_double_brace_is_literal(text: str) -> None:
    assert render(text, lambda ref: "X") == text


@given(st.text(alphabet='{}" \\secrtab', max_size=40))
def test_parser_accepts_or_refuses_cleanly(text: str) -> None:
    """Any input either parses, and re-renders to something that parses the same, or is
    refused with a UserError; nothing else escapes."""
    try:
        parts = parse(text)
    except UserError:
        return
    rebuilt = "".join(p if isinstance(p, str) else str(p) for p in parts)
    assert parse(rebuilt) == parts


def test_properties_files() -> None:
    text = "# c\nA=1\nexport B = two\nC: \"three\"\n! x\nD='four=4'\nbad line\n"
    assert parse_properties(text) == {"A": "1", "B": "two", "C": "three", "D": "four=4"}
