"""The embedded engine's version of the reviews query: the same rows as
``current_boundary_reviews_joined_to_address_base.duckdb.sql``, on whole columns.

The SQL pairs each address's old and new divisions with a self-join and aggregates lists of
JSON objects per address; over the millions of addresses a set of reviews covers, DuckDB then
holds far more than its memory limit (every pair carries the divisions' names and URLs, and
every address its JSON). Here the work is on integers, and text is made once per distinct
value:

1. each division key of each address (all letters: a division's size counts every address in
   it) becomes a division number; old and new divisions of one review and type are paired per
   address by a hash join on integers;
2. the three counts that decide whether a boundary is the same, n(O), n(N) and n(O, N), are
   bincounts; the change scenario follows per pair;
3. an address's element for a review is fixed by its changes in order, so elements are made
   as text once per distinct combination of changes, and each address points at them;
4. each letter asked for is written as the scratch table holds its UPRNs, with the list
   column built from offsets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from databaker.arrays import distinct
from databaker.resources.point_in_area import (
    filesystem_of,
    joined_parquet,
    read_parquet_folder,
    write_parquet_file,
)

DETAILS = (
    "consultation_url",
    "legislation_title",
    "effective_date",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
)
DIVISION_FIELDS = (
    "division_slug",
    "division_name",
    "division_official_identifier",
    "divisionset_pmtiles_url",
)
SCENARIOS = ("BOTH_CHANGED", "BOUNDARY_CHANGED", "NAME_CHANGED", "NO_CHANGE")
"""Indexed by ``2 * same_boundary + same_name``."""


def write_review_lists(
    *,
    addresses_in_review_divisions: str,
    boundary_review_divisions: str,
    letters: Sequence[str],
    output: str,
    workers: int,
) -> None:
    """Write ``output/first_letter=<L>/data_0.parquet`` for each of ``letters`` that has
    addresses, as the reviews query does (see the module doc)."""
    divisions = _Divisions.read(boundary_review_divisions)
    filesystem, base = filesystem_of(addresses_in_review_divisions)
    folders = _letter_folders(filesystem, base)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        coded = list(pool.map(lambda f: divisions.codes_in(filesystem, f), folders.values()))
    sizes = np.array([len(rows) for rows, _ in coded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    row = np.concatenate(
        [
            np.repeat(start + np.arange(len(rows)), rows)
            for start, (rows, _) in zip(starts, coded, strict=True)
        ]
        or [np.empty(0, np.int64)]
    )
    division = np.concatenate([codes for _, codes in coded] or [np.empty(0, np.int32)])
    element_of_row, texts = divisions.elements(int(sizes.sum()), row, division)
    _, output_path = filesystem_of(output)
    letter_start = dict(zip(folders, starts.tolist(), strict=True))
    letter_rows = dict(zip(folders, sizes.tolist(), strict=True))

    def write_letter(letter: str) -> None:
        folder = folders.get(letter)
        if folder is None:
            return
        table = read_parquet_folder(filesystem, folder, ["uprn"])
        if table is None:
            return
        lists = element_of_row.slice(letter_start[letter], letter_rows[letter])
        joined = table.append_column("boundary_reviews", _text_lists(lists, texts))
        write_parquet_file(
            filesystem,
            f"{output_path}first_letter={letter}/data_0.parquet",
            joined,
            **joined_parquet(joined.schema, ["boundary_reviews"]),
        )

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        list(pool.map(write_letter, sorted(letters)))


def _letter_folders(filesystem: pafs.FileSystem, base: str) -> dict[str, str]:
    """Each letter's folder of the join's first step, by letter, in letter order."""
    selector = pafs.FileSelector(base.rstrip("/"), allow_not_found=True)
    found = {}
    for info in filesystem.get_file_info(selector):
        name = info.path.rstrip("/").rsplit("/", 1)[-1]
        if info.type == pafs.FileType.Directory and name.startswith("first_letter="):
            found[name.removeprefix("first_letter=")] = info.path
    return dict(sorted(found.items()))


def _text_lists(lists: pa.LargeListArray, texts: pa.Array) -> pa.ListArray:
    """Each row's element numbers as their texts (``lists`` may be a slice)."""
    offsets = lists.offsets.to_numpy()
    values = texts.take(lists.flatten())
    return pa.ListArray.from_arrays(pa.array((offsets - offsets[0]).astype(np.int32)), values)


class _Divisions:
    """The export's divisions, numbered, with what an element says of them."""

    def __init__(self, table: pa.Table) -> None:
        order = pc.sort_indices(
            table,
            [
                ("division_key", "ascending"),
                ("source_file", "ascending"),
                ("source_line", "ascending"),
            ],
        )
        table = table.take(order)
        keys = table["division_key"].to_numpy(zero_copy_only=False)
        first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, bool)
        rows = table.filter(pa.array(first))
        self.keys = rows["division_key"].combine_chunks()
        self.fields = rows.to_pydict()
        self.review = np.asarray(self.fields["boundary_review_id"], dtype=np.int64)
        self.new = np.array([g == "new" for g in self.fields["divisionset_generation"]], bool)
        groups = {
            pair: n
            for n, pair in enumerate(
                sorted(set(zip(self.review.tolist(), self.fields["division_type"], strict=True)))
            )
        }
        self.group = np.array(
            [
                groups[p]
                for p in zip(self.review.tolist(), self.fields["division_type"], strict=True)
            ],
            dtype=np.int64,
        )
        slug_number = {slug: n for n, slug in enumerate(sorted(set(self.fields["division_slug"])))}
        self.slug = np.array(
            [slug_number[slug] for slug in self.fields["division_slug"]], dtype=np.int64
        )
        firsts = table.take(
            pc.sort_indices(
                table,
                [
                    ("boundary_review_id", "ascending"),
                    ("source_file", "ascending"),
                    ("source_line", "ascending"),
                ],
            )
        ).to_pydict()
        self.details: dict[int, dict[str, str]] = {}
        for i, review in enumerate(firsts["boundary_review_id"]):
            self.details.setdefault(review, {name: firsts[name][i] for name in DETAILS})

    @classmethod
    def read(cls, location: str) -> _Divisions:
        filesystem, path = filesystem_of(location)
        columns = [
            "division_key",
            "boundary_review_id",
            "divisionset_generation",
            "division_type",
            *DIVISION_FIELDS,
            *DETAILS,
            "source_file",
            "source_line",
        ]
        return cls(pq.read_table(path, columns=columns, filesystem=filesystem))

    def codes_in(self, filesystem: pafs.FileSystem, folder: str) -> tuple[np.ndarray, np.ndarray]:
        """A letter's rows' key counts, and their keys as division numbers."""
        table = read_parquet_folder(filesystem, folder, ["division_keys"])
        if table is None:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        keys = table["division_keys"].combine_chunks()
        counts = pc.list_value_length(keys).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = pc.index_in(pc.list_flatten(keys), value_set=self.keys)
        return counts, codes.to_numpy(zero_copy_only=False).astype(np.int32)

    def elements(
        self, rows: int, row: np.ndarray, division: np.ndarray
    ) -> tuple[pa.LargeListArray, pa.Array]:
        """For each of ``rows`` rows (addresses of all letters), given the divisions holding
        them (``row[i]`` is in ``division[i]``), the numbers of its elements in review order,
        and the elements' texts."""
        old, new = ~self.new[division], self.new[division]
        pairs = (
            pa.table({"row": row[old], "group": self.group[division[old]], "o": division[old]})
            .join(
                pa.table({"row": row[new], "group": self.group[division[new]], "n": division[new]}),
                keys=["row", "group"],
                join_type="inner",
            )
            .combine_chunks()
        )
        r = pairs["row"].to_numpy()
        o = pairs["o"].to_numpy().astype(np.int64)
        n = pairs["n"].to_numpy().astype(np.int64)
        d = max(len(self.keys), 1)
        in_old = np.bincount(distinct(r * d + o) % d, minlength=d)
        in_new = np.bincount(distinct(r * d + n) % d, minlength=d)
        pair_code, pair_inverse = np.unique(o * d + n, return_inverse=True)
        in_both = np.bincount(pair_inverse, minlength=len(pair_code))
        same_boundary = (in_old[o] == in_new[n]) & (in_new[n] == in_both[pair_inverse])
        same_name = self.slug[o] == self.slug[n]
        scenario = 2 * same_boundary.astype(np.int64) + same_name.astype(np.int64)
        change, change_of = np.unique((o * d + n) * 4 + scenario, return_inverse=True)
        change_texts, change_rank = self._changes(change, d)
        review = self.review[o]
        order = np.lexsort((change_rank[change_of], review, r))
        r, review, change_of = r[order], review[order], change_of[order]
        starts = (
            np.flatnonzero(
                np.concatenate([[True], (r[1:] != r[:-1]) | (review[1:] != review[:-1])])
            )
            if len(r)
            else np.empty(0, np.int64)
        )
        signatures = pc.binary_join(
            pa.ListArray.from_arrays(
                pa.array(np.append(starts, len(r)).astype(np.int32)),
                pa.array(change_of.astype(np.int64)).cast(pa.string()),
            ),
            ",",
        )
        encoded = pc.dictionary_encode(
            pc.binary_join_element_wise(pa.array(review[starts]).cast(pa.string()), signatures, ":")
        )
        texts = [
            self._element(int(review_id), [change_texts[int(c)] for c in changes.split(",")])
            for review_id, changes in (
                text.split(":", 1) for text in encoded.dictionary.to_pylist()
            )
        ]
        element_row = r[starts]
        offsets = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(element_row, minlength=rows), out=offsets[1:])
        lists = pa.LargeListArray.from_arrays(pa.array(offsets), encoded.indices)
        return lists, pa.array(texts, pa.string())

    def _changes(self, change: np.ndarray, d: int) -> tuple[list[str], np.ndarray]:
        """Each distinct change as JSON text, and its rank in an element's order (division
        type, old slug, new slug)."""
        scenario, pair = change % 4, change // 4
        o, n = pair // d, pair % d
        f = self.fields
        objects = [
            {
                "division_type": f["division_type"][i],
                "old_division_slug": f["division_slug"][i],
                "old_division_name": f["division_name"][i],
                "old_division_official_identifier": f["division_official_identifier"][i],
                "old_divisionset_pmtiles_url": f["divisionset_pmtiles_url"][i],
                "new_division_slug": f["division_slug"][j],
                "new_division_name": f["division_name"][j],
                "new_division_official_identifier": f["division_official_identifier"][j],
                "new_divisionset_pmtiles_url": f["divisionset_pmtiles_url"][j],
                "change_scenario": SCENARIOS[s],
            }
            for i, j, s in zip(o.tolist(), n.tolist(), scenario.tolist(), strict=True)
        ]
        ranked = sorted(
            range(len(objects)),
            key=lambda k: (
                objects[k]["division_type"],
                objects[k]["old_division_slug"],
                objects[k]["new_division_slug"],
            ),
        )
        rank = np.empty(len(objects), dtype=np.int64)
        rank[ranked] = np.arange(len(objects))
        return [_json(obj) for obj in objects], rank

    def _element(self, review: int, changes: list[str]) -> str:
        head = _json(
            {"boundary_review_id": review, "boundary_review_details": self.details[review]}
        )
        return f'{head[:-1]},"changes":[{",".join(changes)}]}}'


def _json(value: object) -> str:
    """Compact JSON, text as it is (no ``\\u`` escapes for non-ASCII), keys in order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
