"""A layer's joined table, and the checks that stop a layer being baked from a bad one.

The joined table holds every address of the partitioned AddressBase once (its UPRN), with the
layer's list column, split by first letter like the AddressBase tables (one letter can be
rebuilt from the UI); the version takes the other address columns from the AddressBase letter
each letter was joined from (:mod:`databaker.layers.joined_addresses`). Its two checks are the
same for every layer: the whole table comes from one AddressBase drop, the one the partitioned
AddressBase holds now, and it holds exactly the partitioned AddressBase's UPRNs.
"""

from dataclasses import dataclass

import dagster as dg

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE, addressbase_partitioned
from databaker.catalog import OWNERS
from databaker.concurrency import layer_pool
from databaker.layers.columns import joined_metadata
from databaker.layers.layer import JoinRun, Layer
from databaker.layers.letter_summaries import (
    LetterSummary,
    addressbase_summaries,
    joined_summaries,
)
from databaker.layers.outcode_files import LETTER_FOLDER, keys_by_letter
from databaker.layers.rejoined_addresses import rejoin_changed_addresses
from databaker.layers.unchanged_letters import (
    InputRows,
    LetterPlan,
    input_rows,
    letter_plan,
    prune_areas,
    restamp_kept,
    write_areas,
)
from databaker.markdown import markdown_table
from databaker.partitions import letter_partitioned_asset
from databaker.resources import LayerStore, QueryEngine, SqlQuery
from databaker.staging import (
    RowChanges,
    letters_holding_keys,
    partition_prefix,
    partition_record,
    rebuild_letter_partitions,
    report_letter_partitions,
    staging_area,
)

UPRN_DIFFERENCES_QUERY = SqlQuery.beside(__file__, "uprn_set_differences")
SAMPLE_SIZE = 10


def joined_asset(layer: Layer) -> dg.AssetsDefinition:
    """The layer's joined table, rebuilt a letter partition at a time by ``layer.join``."""
    deps = [addressbase_partitioned, *([layer.input.asset] if layer.input else [])]

    @letter_partitioned_asset(
        name=layer.joined.name,
        deps=deps,
        group_name=layer.name,
        pool=layer_pool(layer.name),
        kinds={"duckdb", "parquet"},
        owners=OWNERS,
        metadata=joined_metadata(layer),
        description=f"Every address once, with its `{layer.ids_column}`: {layer.description}",
    )
    def joined(
        context: dg.AssetExecutionContext, engine: QueryEngine, store: LayerStore
    ) -> dg.MaterializeResult:
        if layer.input and not store.list_keys(layer.input.table.prefix):
            raise dg.Failure(f"{layer.input.asset_name} has not been materialised yet")
        letters = sorted(
            set(context.partition_keys)
            & letters_holding_keys(store, ADDRESSBASE_PARTITIONED_TABLE.prefix)
        )
        rows_joined = _input_rows(layer, store)
        plan = letter_plan(
            store,
            joined_prefix=layer.joined.prefix,
            letters=letters,
            engine=type(engine).__name__,
            rows=rows_joined,
        )
        if rows_joined is not None:
            write_areas(store, layer.joined.prefix, rows_joined)
        if plan.kept:
            context.log.info(
                f"kept {len(plan.kept)} of {len(letters)} letters as they were (no address in "
                f"an area that changed): {', '.join(plan.kept)}"
            )

        in_part: dict[str, RowChanges] = {}

        def write(staging: str) -> dict[str, RowChanges]:
            with staging_area(store, context, "scratch") as scratch:
                in_part.update(
                    _stage_rebuilt(context, layer, engine, store, plan, staging, scratch)
                )
            return in_part

        rows = rebuild_letter_partitions(
            context,
            store,
            write=write,
            table_prefix=layer.joined.prefix,
            built_from=plan.built_from,
            kept=plan.kept,
        )
        restamp_kept(store, layer.joined.prefix, plan)
        prune_areas(store, layer.joined.prefix)
        context.log.info(
            f"joined {sum(rows.values())} addresses in {len(rows)} letter partition(s)"
        )
        report_letter_partitions(
            context,
            store,
            table_prefix=layer.joined.prefix,
            rows=rows,
            each={
                letter: {
                    "kept_as_it_was": letter in plan.kept,
                    "joined_in_part": letter in in_part,
                }
                for letter in letters
            },
        )
        return dg.MaterializeResult()

    return joined


def _stage_rebuilt(
    context: dg.AssetExecutionContext,
    layer: Layer,
    engine: QueryEngine,
    store: LayerStore,
    plan: LetterPlan,
    staging: str,
    scratch: str,
) -> dict[str, RowChanges]:
    """Stage the letters the plan rebuilds: those it can, by joining again only their
    addresses in changed areas; the others whole. Returns how the first kind changed.

    An engine that shares table names (Athena) joins every letter whole: the addresses joined
    again are given as the partitioned AddressBase, which would move that table for the other
    runs reading it."""
    changes = {}
    if plan.rejoinable and not engine.shares_table_names:
        rejoined = rejoin_changed_addresses(
            layer,
            engine,
            store,
            rejoinable=plan.rejoinable,
            output=staging,
            scratch=f"{scratch}rejoined/",
        )
        changes = rejoined.changes
        if changes:
            context.log.info(
                f"joined again only the {rejoined.addresses} of {rejoined.of} addresses in "
                f"changed areas, in {len(changes)} letters: {', '.join(changes)}"
            )
    whole = [letter for letter in plan.rebuilt if letter not in changes]
    # A join may refuse to write into a folder that is not empty.
    joined_whole = f"{scratch}whole/" if changes else staging
    if whole:
        layer.join(
            JoinRun(
                engine=engine,
                store=store,
                letters=whole,
                output=store.uri_for_writing(joined_whole),
                scratch=f"{scratch}join/",
            )
        )
    if changes:
        for letter in whole:
            store.replace_prefix(
                partition_prefix(joined_whole, letter), partition_prefix(staging, letter)
            )
    return changes


def _input_rows(layer: Layer, store: LayerStore) -> InputRows | None:
    """The input's rows, for a layer whose join is local to each address's point."""
    if layer.input is None or layer.input.contained_by is None:
        return None
    return input_rows(
        store, layer.input.table.prefix, layer.input.ids_from, layer.input.contained_by
    )


def joined_checks(layer: Layer, joined: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    """The blocking checks of the layer's joined table (see the module doc)."""
    table = layer.joined
    pool = layer_pool(layer.name)

    @dg.asset_check(asset=joined, name="single_addressbase_source", blocking=True, pool=pool)
    def single_addressbase_source(engine: QueryEngine, store: LayerStore) -> dg.AssetCheckResult:
        """The whole joined table comes from exactly one AddressBase drop: each letter was
        joined from the AddressBase letter there now (its record says so), and those letters
        hold one drop between them."""
        letters = [f.removeprefix(LETTER_FOLDER) for f in keys_by_letter(store, table.prefix)]
        if not letters:
            return dg.AssetCheckResult(passed=False, description="the joined table has no rows")
        out_of_step = _out_of_step(store, table.prefix, letters)
        addressbase = addressbase_summaries(engine, store, table.prefix).values()
        sources = sorted(set().union(*(letter.sources for letter in addressbase)))
        rows_without_source = sum(letter.rows_without_source for letter in addressbase)
        problems = []
        if len(sources) != 1 or rows_without_source:
            problems.append(
                f"{len(sources)} AddressBase sources: {', '.join(sources[:SAMPLE_SIZE])}"
            )
        if out_of_step.unrecorded:
            problems.append(
                "AddressBase letters with no record, as a bake stopped while replacing them "
                f"leaves them (bake from the drop again): {', '.join(out_of_step.unrecorded)}"
            )
        if out_of_step.replaced:
            problems.append(
                "letters joined from an AddressBase letter since replaced: "
                + ", ".join(out_of_step.replaced)
            )
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or None,
            metadata={
                "addressbase_sources": len(sources),
                "sources": markdown_table(
                    ["AddressBase source"], ([s] for s in sources[:SAMPLE_SIZE])
                ),
                "rows_without_source": rows_without_source,
                "letters_out_of_step": dg.MetadataValue.json(
                    sorted(out_of_step.replaced + out_of_step.unrecorded)
                ),
            },
        )

    @dg.asset_check(asset=joined, name="uprns_match_addressbase", blocking=True, pool=pool)
    def uprns_match_addressbase(engine: QueryEngine, store: LayerStore) -> dg.AssetCheckResult:
        """The joined table holds each UPRN of the partitioned AddressBase exactly once, no more.

        Letter by letter, equal row counts and checksums make the two UPRN multisets equal;
        the partitioned table holds each UPRN once by construction (see
        `addressbase_partitioned`), so the joined one does too. A letter is summarised once
        per token (`databaker/layers/letter_summaries.py`).
        """
        addressbase = addressbase_summaries(engine, store, table.prefix)
        joined = joined_summaries(engine, store, table)
        empty = [
            t.prefix
            for t, s in ((ADDRESSBASE_PARTITIONED_TABLE, addressbase), (table, joined))
            if not s
        ]
        if empty:
            return dg.AssetCheckResult(
                passed=False, description=f"nothing to compare: no files under {', '.join(empty)}"
            )
        differing = sorted(
            letter
            for letter in addressbase.keys() | joined.keys()
            if _uprn_set(addressbase.get(letter)) != _uprn_set(joined.get(letter))
        )
        metadata: dict = {
            "addressbase_rows": sum(s.rows for s in addressbase.values()),
            "addressbase_checksum": str(sum(s.checksum for s in addressbase.values())),
            "joined_rows": sum(s.rows for s in joined.values()),
            "joined_checksum": str(sum(s.checksum for s in joined.values())),
            "letters_differing": dg.MetadataValue.json(differing),
        }
        description = None
        if differing:
            refs = {
                "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
                "joined": table.in_store(store),
            }
            differences = engine.run(
                UPRN_DIFFERENCES_QUERY, {**refs, "sample_size": SAMPLE_SIZE}
            ).to_pylist()[0]
            metadata.update({k: dg.MetadataValue.json(v) for k, v in differences.items()})
            description = (
                f"joined rows {metadata['joined_rows']}, AddressBase rows "
                f"{metadata['addressbase_rows']}; letters differing: {', '.join(differing)}; "
                f"missing from joined: {differences['missing_from_joined']}; not in "
                f"AddressBase: {differences['not_in_addressbase']}"
            )
        return dg.AssetCheckResult(passed=not differing, description=description, metadata=metadata)

    return [single_addressbase_source, uprns_match_addressbase]


def _uprn_set(letter: LetterSummary | None) -> tuple[int, int]:
    """What a letter's UPRN multiset is compared by: rows and checksum (none: no rows)."""
    return (letter.rows, letter.checksum) if letter else (0, 0)


@dataclass(frozen=True)
class _OutOfStep:
    """Letters of a joined table not joined from the AddressBase letter there now."""

    replaced: list[str]
    """Its record names another AddressBase letter's token, or it has no record."""
    unrecorded: list[str]
    """The AddressBase letter has no record."""


def _out_of_step(store: LayerStore, joined_prefix: str, letters: list[str]) -> _OutOfStep:
    """The joined table's ``letters`` (those holding data files) whose record does not name
    the token the partitioned AddressBase's letter holds now as the one it was joined from."""
    found: dict[str, str] = {}

    def in_step(letter: str) -> None:
        joined = partition_record(store, joined_prefix, letter)
        addressbase = partition_record(store, ADDRESSBASE_PARTITIONED_TABLE.prefix, letter)
        if addressbase is None:
            found[letter] = "unrecorded"
        elif joined is None or joined.built_from.get("addressbase") != addressbase.token:
            found[letter] = "replaced"

    store.for_each(in_step, letters)
    return _OutOfStep(
        replaced=sorted(letter for letter, kind in found.items() if kind == "replaced"),
        unrecorded=sorted(letter for letter, kind in found.items() if kind == "unrecorded"),
    )
