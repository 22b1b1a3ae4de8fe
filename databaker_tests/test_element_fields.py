"""Lists of records: element texts split into fields, a letter at a time, and each file's
elements numbered among its own (databaker.layers.element_files)."""

import pyarrow as pa
import pytest

from databaker.layers.element_fields import FIELD_SEPARATOR, ElementFields, ElementTextError
from databaker.layers.element_files import LetterElements

FIELDS = ElementFields(("kind", "code", "division"))
TEXT_LISTS = pa.list_(pa.string())
DICTIONARY_LISTS = pa.list_(pa.dictionary(pa.int32(), pa.string()))


def text(*values: str) -> str:
    return FIELD_SEPARATOR.join(values)


def record(*values: str) -> dict[str, str | None]:
    """An element as a reader gives it: empty values are null."""
    return {name: value or None for name, value in zip(FIELDS.names, values, strict=True)}


LETTER = [
    [text("parish", "Q", ""), text("council", "B", "ward-2")],
    [],
    [text("council", "A", "ward-1")],
    [text("council", "A", ""), text("parish", "P", "")],
]
"""A letter's lists of element texts, as the joined table holds them."""
FILE_ROWS = [0, 1, 2]


def letter_of(lists: list[list[str]]) -> LetterElements:
    """As the letter is read: the lists' strings dictionary-encoded."""
    return LetterElements.of(FIELDS, pa.array(lists, TEXT_LISTS).cast(DICTIONARY_LISTS))


def file_of(letter: LetterElements, rows: list[int]):
    return letter.file(letter.lists.take(pa.array(rows)))


def test_a_file_s_records_are_its_texts_split_into_fields_empty_ones_null():
    published = file_of(letter_of(LETTER), FILE_ROWS).published()
    assert published.cast(FIELDS.list_type).to_pylist() == [
        [record("parish", "Q", ""), record("council", "B", "ward-2")],
        [],
        [record("council", "A", "ward-1")],
    ]
    plain = FIELDS.published_lists(pa.array([LETTER[row] for row in FILE_ROWS], TEXT_LISTS))
    assert published.cast(FIELDS.list_type).equals(plain)


def test_each_field_is_a_dictionary_of_the_values_the_file_uses_in_sorted_order():
    """Not the letter's: the parish ``P`` and the lone ``council, A`` of the fourth row are
    not in the file's rows."""
    published = file_of(letter_of(LETTER), FILE_ROWS).published()
    structs = published.values
    dictionaries = {name: structs.field(name).dictionary.to_pylist() for name in FIELDS.names}
    assert dictionaries == {
        "kind": ["council", "parish"],
        "code": ["A", "B", "Q"],
        "division": ["ward-1", "ward-2"],
    }
    assert structs.field("division").indices.to_pylist() == [None, 1, 0]


def test_a_file_s_texts_are_a_dictionary_of_its_own_whatever_letter_it_was_cut_from():
    """The same rows cut from two letters holding other elements too (sorting before and after
    theirs) give the same array: what the file's row digest is taken of."""
    other = [
        [text("aaa", "0", "")],
        [text("parish", "Q", ""), text("council", "B", "ward-2")],
        [],
        [text("zzz", "9", "x")],
        [text("council", "A", "ward-1")],
    ]
    here = file_of(letter_of(LETTER), FILE_ROWS).texts()
    there = file_of(letter_of(other), [1, 2, 4]).texts()
    assert here.equals(there)
    assert here.type == DICTIONARY_LISTS
    assert here.values.dictionary.to_pylist() == sorted(
        {element for row in FILE_ROWS for element in LETTER[row]}
    )
    assert here.cast(TEXT_LISTS).to_pylist() == [LETTER[row] for row in FILE_ROWS]


def test_lists_written_plainly_give_the_same_files():
    plain = LetterElements.of(FIELDS, pa.array(LETTER, TEXT_LISTS))
    encoded = letter_of(LETTER)
    assert plain.texts.equals(encoded.texts)
    assert file_of(plain, FILE_ROWS).published().equals(file_of(encoded, FILE_ROWS).published())


def test_a_letter_without_elements_gives_empty_lists():
    letter = letter_of([[], []])
    published = file_of(letter, [0, 1]).published()
    assert published.cast(FIELDS.list_type).to_pylist() == [[], []]


def test_the_texts_of_published_records_are_the_elements_again():
    """The diff compares records as texts, from a file read back or from the rows just
    encoded (whose fields are dictionaries)."""
    published = file_of(letter_of(LETTER), FILE_ROWS).published()
    expected = [LETTER[row] for row in FILE_ROWS]
    assert FIELDS.text_lists(published).to_pylist() == expected
    assert FIELDS.text_lists(published.cast(FIELDS.list_type)).to_pylist() == expected


@pytest.mark.parametrize(
    ("lists", "message"),
    [
        ([[text("council", "A")]], "holds 2 fields, not 3"),
        ([[text("council", "A", "w", "x")]], "holds 4 fields, not 3"),
        ([[text("council", "A", "w"), None]], "null element"),
    ],
)
def test_elements_that_are_not_one_value_per_field_are_refused(lists, message):
    with pytest.raises(ElementTextError, match=message):
        LetterElements.of(FIELDS, pa.array(lists, TEXT_LISTS))
