"""The Dagster UI in a browser, as an operator uses it to rebuild a layer and look at it.

One ``dg dev`` runs for the module on 127.0.0.1, with a temporary ``DAGSTER_HOME`` holding the
repository's ``dagster.yaml``, a temporary data root and a drops folder. Headless Chromium
(Debian's ``chromium``, driven by Playwright; nothing is downloaded) clicks through the pages
and keeps a screenshot of each in ``ui/`` under ``$DATABAKER_TEST_ARTEFACTS`` (default
``test-artefacts/``), with the deployment's log.

On a real start the drop sensor bakes the newest drop at once (``test_daemon_end_to_end``
covers that). Here the drop arrives just after the sensor's first look, and the sensor looks
again only an hour later, so the one bake is the one launched from the UI.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest

from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.partitions import first_letter_partitions
from databaker.resources.input_locations import SUCCESS_MARKER
from databaker.sources import SAMPLE_ADDRESSBASE
from databaker_tests.artefacts import fresh_artefacts_folder
from databaker_tests.dagster_server import REPOSITORY, ROOT, DagsterDeployment, dagster_dev

pytestmark = pytest.mark.slow_module

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""The machine's network is closed: without these flags Chromium keeps trying to reach Google."""
SENSOR_INTERVAL_SECONDS = 3600
WAIT_SECONDS = 300
"""The bound on every wait for the deployment; a bake of the sample takes well under a minute."""
PAGE_MS = 60_000
"""The bound on every wait for a page or an element, in milliseconds."""
LAYER_JOB = CURRENT_ELECTIONS.job_name
VERSION = CURRENT_ELECTIONS.version_asset_name
PUBLISHED = CURRENT_ELECTIONS.published_asset_name
ALL_LETTER_KEYS = first_letter_partitions.get_partition_keys()
PARTITION_TAG = "dagster/partition"
GROUP_ASSETS = [
    CURRENT_ELECTIONS.input.asset_name,
    CURRENT_ELECTIONS.joined.name,
    VERSION,
    PUBLISHED,
]
WARNING_CATEGORY = re.compile(r"\b[A-Z][a-z]\w*Warning\b")
"""A Python warning's category as Python prints it (`BetaWarning`, `SupersessionWarning`),
not the `WARNING` of a log line."""

DROPS_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 10) { status } } }
  }
}
"""

BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    ... on PartitionBackfill {
      status
      unfinishedRuns(limit: 100) { runId }
      runs(limit: 100) { runId status jobName tags { key value } }
    }
  }
}
"""


@dataclass(frozen=True)
class UI:
    """The deployment, where it keeps the layers, and the browser page looking at it."""

    deployment: DagsterDeployment
    data_root: Path
    page: Page
    screenshots: Path

    def open(self, path: str, *, height: int = 2400) -> None:
        """Go to ``path``; ``height`` is the window's, tall enough that a screenshot holds
        the whole page (the UI scrolls inside the window, so a page is never taller)."""
        self.page.set_viewport_size({"width": 1600, "height": height})
        self.page.goto(self.deployment.url + path)

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=path)
        return path


@pytest.fixture(scope="module")
def artefacts() -> Path:
    return fresh_artefacts_folder("ui")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, artefacts: Path
) -> Iterator[tuple[DagsterDeployment, Path]]:
    """``dg dev`` on a drops folder the drop reaches only after the drop sensor's first look."""
    base = tmp_path_factory.mktemp("ui")
    home, drops, data_root = base / "dagster_home", base / "drops", base / "data"
    home.mkdir()
    drops.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    environment = {
        "DATABAKER_DATA_ROOT": str(data_root),
        "DATABAKER_ADDRESSBASE_DROPS": str(drops),
        "DATABAKER_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
    }
    with dagster_dev(home, environment, artefacts / "dg-dev.log") as running:
        first_look = running.wait_for(
            "the drop sensor's first look", lambda: _finished_drops_ticks(running), WAIT_SECONDS
        )
        assert first_look == ["SKIPPED"], f"the drop sensor's look at no drop: {first_look}"
        drop = drops / SAMPLE_ADDRESSBASE.name
        shutil.copytree(SAMPLE_ADDRESSBASE, drop, ignore=shutil.ignore_patterns(SUCCESS_MARKER))
        (drop / SUCCESS_MARKER).touch()
        yield running, data_root


def _finished_drops_ticks(deployment: DagsterDeployment) -> list[str]:
    selector = {
        "repositoryLocationName": deployment.location,
        "repositoryName": REPOSITORY,
        "sensorName": "addressbase_drops",
    }
    sensor = deployment.graphql(DROPS_TICKS, selector=selector)["sensorOrError"]
    statuses = [tick["status"] for tick in sensor["sensorState"]["ticks"]]
    return [status for status in statuses if status != "STARTED"]


@pytest.fixture(scope="module")
def ui(
    deployment: tuple[DagsterDeployment, Path],
    artefacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[UI]:
    """Chromium on a fresh profile, allowed to reach the deployment alone."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the dev extra has it)"
    )
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)")
    running, data_root = deployment
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            browser.route(re.compile(rf"^(?!{re.escape(running.url)}/)"), lambda r: r.abort())
            browser.set_default_timeout(PAGE_MS)
            page = browser.new_page()
            # A fresh profile is greeted, at a moment of the UI's choosing, by a newsletter
            # dialog whose backdrop takes every click until it is skipped.
            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"),
                lambda _: page.get_by_role("button", name="Skip").click(),
            )
            yield UI(running, data_root, page, artefacts)
        finally:
            browser.close()


ENDED = ("SUCCESS", "FAILURE", "CANCELED")
"""The statuses of a run that has ended."""


@pytest.fixture(scope="module")
def launched(ui: UI) -> list[dict[str, Any]]:
    """The layer launched as the README says, by clicking: Jobs, the layer's job,
    "Materialize all", every partition, "Launch backfill"; the runs of that backfill, once it
    has finished."""
    page = ui.page
    ui.open("/")
    page.locator('a[href="/jobs"]').click()
    page.locator(f'a[href$="/jobs/{LAYER_JOB}"]').first.click()
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    choose_every_partition(ui, dialog)
    ui.screenshot("1-launch-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    backfill = page.get_by_text(re.compile(r"Created backfill \w+")).inner_text().split()[-1]

    def finished() -> list[dict[str, Any]] | None:
        """Its runs, once every one has finished and either the daemon has marked the
        backfill done or they have covered every letter (the daemon marks it only at its next
        look, up to half a minute later)."""
        found = ui.deployment.graphql(BACKFILL, backfillId=backfill)["partitionBackfillOrError"]
        runs = found["runs"]
        # A run the daemon has just created is NOT_STARTED, and not among the unfinished ones.
        if not runs or found["unfinishedRuns"] or any(r["status"] not in ENDED for r in runs):
            return None
        covered = set().union(*(letters_of(run) for run in runs))
        done = found["status"] != "REQUESTED" or covered == set(ALL_LETTER_KEYS)
        return runs if done else None

    return ui.deployment.wait_for(f"backfill {backfill} to finish", finished, WAIT_SECONDS)


def choose_every_partition(ui: UI, dialog: Locator) -> None:
    """Click the launch dialog's "All" until it says every partition is chosen, for up to
    ``WAIT_SECONDS``. The dialog counts the partitions once it has loaded them: with the full
    suite on 2 cores the count had not shown 60 s after a first click, twice in about ten
    runs. "All" is one choice of a segmented control, so clicking it again changes nothing
    already chosen. On failure the dialog's screenshot is kept."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    every = dialog.get_by_role("button", name="All", exact=True)
    counted = dialog.get_by_text(f"{len(ALL_LETTER_KEYS)} partitions", exact=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        every.click()
        try:
            counted.wait_for(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            if time.monotonic() > deadline:
                ui.screenshot("1-launch-dialog-not-counted")
                raise


def letters_of(run: dict[str, Any]) -> set[str]:
    """The letter partitions a run builds, from its tags."""
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    if PARTITION_TAG in tags:
        return {tags[PARTITION_TAG]}
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start is None or end is None:
        return set()
    return set(ALL_LETTER_KEYS[ALL_LETTER_KEYS.index(start) : ALL_LETTER_KEYS.index(end) + 1])


def test_a_layer_is_rebuilt_from_its_job_page_in_one_run(
    ui: UI, launched: list[dict[str, Any]]
) -> None:
    """The README's quickest rebuild from the UI: the layer's whole job, every letter in one
    run, as the drop sensor runs it; the run's page says it succeeded."""
    assert [(run["jobName"], run["status"]) for run in launched] == [(LAYER_JOB, "SUCCESS")]
    (run,) = launched
    assert letters_of(run) == set(ALL_LETTER_KEYS)
    ui.open(f"/runs/{run['runId']}")
    ui.page.get_by_text("Success", exact=True).first.wait_for()
    ui.screenshot("2-run")


def test_the_asset_graph_shows_the_layer_as_a_group(ui: UI, launched: list[dict[str, Any]]) -> None:
    """Its input, joined table, version and published layer, once it is baked: the joined
    table with every letter partition filled."""
    from playwright.sync_api import expect  # installed: the ui fixture skips otherwise

    group = f"/locations/{ui.deployment.location}/asset-groups/{CURRENT_ELECTIONS.name}"
    ui.open(group, height=1000)
    page = ui.page
    for asset in GROUP_ASSETS:
        # A long name is cut short in its node and given whole as the node's tooltip.
        node = page.get_by_text(asset, exact=True).or_(page.locator(f'[data-tooltip="{asset}"]'))
        node.first.wait_for()
    expect(page.get_by_text("Loading...")).to_have_count(0, timeout=PAGE_MS)
    expect(page.get_by_text("100% filled", exact=True)).to_have_count(1, timeout=PAGE_MS)
    ui.screenshot("3-asset-graph")


def published_layer(data_root: Path) -> tuple[list[str], int]:
    """The published layer's columns and number of rows, read from its outcode files (an
    outcode where no address has an ID has a file of no columns)."""
    files = sorted((data_root / PUBLISHED).glob("*.parquet"))
    schemas = {tuple(pq.read_schema(file).names) for file in files} - {()}
    assert len(schemas) == 1, f"the outcode files under {data_root / PUBLISHED}: {schemas}"
    return list(schemas.pop()), sum(pq.read_metadata(file).num_rows for file in files)


def asset_page(ui: UI, asset: str) -> Page:
    """The asset's page, once it shows the UI's bake (its materialisation's metadata)."""
    ui.open(f"/assets/{asset}")
    ui.page.get_by_text("bake_id", exact=True).wait_for()
    ui.screenshot(f"4-{asset}")
    return ui.page


def test_the_published_layer_page_shows_its_columns(ui: UI, launched: list[dict[str, Any]]) -> None:
    columns, _ = published_layer(ui.data_root)
    table = asset_page(ui, PUBLISHED).locator("table").filter(has_text="Column name")
    shown = table.locator("tbody tr td:first-child").all_inner_texts()
    assert [name.strip() for name in shown] == columns


def test_the_published_layer_page_shows_its_row_count(
    ui: UI, launched: list[dict[str, Any]]
) -> None:
    _, rows = published_layer(ui.data_root)
    shown = re.search(r"Row count\s+([\d,]+)", asset_page(ui, PUBLISHED).inner_text("body"))
    assert shown, "no row count on the page"
    assert shown.group(1) == f"{rows:,}"


@pytest.mark.parametrize("asset", [VERSION, PUBLISHED])
def test_the_layer_pages_show_its_coverage_map(
    ui: UI, launched: list[dict[str, Any]], asset: str
) -> None:
    """A PNG in the metadata entry named for coverage, which the browser decodes; a long
    entry opens from its "[Show Markdown]" link."""
    page = asset_page(ui, asset)
    rows = page.locator("tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(r"^\s*coverage", re.I))
    )
    assert rows.count() == 1, "no coverage entry in the page's metadata"
    entry = rows.first
    png = 'img[src^="data:image/png;base64,"]'
    collapsed = entry.get_by_text("[Show Markdown]")
    # Under load the entry's Markdown, and then the dialog's, render a while after the page.
    entry.locator(png).or_(collapsed).first.wait_for()
    if collapsed.count():
        collapsed.click()
        entry = page.get_by_role("dialog")
    images = entry.locator(png)
    images.first.wait_for()
    widths = images.evaluate_all(
        "images => Promise.all(images.map("
        "image => image.decode().then(() => image.naturalWidth, () => 0)))"
    )
    assert widths, "no PNG in the coverage entry"
    assert all(width > 0 for width in widths), f"a PNG the browser could not decode: {widths}"
    page.wait_for_timeout(500)  # the dialog fades in: a screenshot at once shows it see-through
    ui.screenshot(f"5-coverage-map-{asset}")


def test_starting_the_ui_and_baking_print_no_python_warning(
    deployment: tuple[DagsterDeployment, Path],
) -> None:
    """Checked last: by now the log holds the webserver's, daemon's and code server's start,
    and the run launched from the UI."""
    running, _ = deployment
    log = running.log.read_text(errors="replace")
    warnings = [line for line in log.splitlines() if WARNING_CATEGORY.search(line)]
    assert not warnings, "\n".join(warnings)
