"""axe-core (Deque's accessibility engine, vendored from its npm package as axe.min.js,
MPL-2.0, its licence beside it) run in the page a browser shows: the violations it finds,
as (rule, impact, first targets). The script is given to the page through WebDriver, so
the pages' own Content-Security-Policy (no inline script) stays as it is."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from selenium.webdriver.remote.webdriver import WebDriver

AXE = Path(__file__).resolve().parent / "axe.min.js"
RUN = """
var done = arguments[arguments.length - 1];
window.axe.run(document, {resultTypes: ["violations"]}).then(function (result) {
  done(result.violations.map(function (v) {
    return [v.id, v.impact, v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); })];
  }));
}, function (error) { done([["axe-error", String(error), []]]); });
"""


@cache
def source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(driver: WebDriver) -> list[tuple[str, str, list[str]]]:
    """Every axe-core violation of the page now shown (an empty list: none)."""
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(source() + "\nwindow.axe = axe;")
    driver.set_script_timeout(60)
    found = driver.execute_async_script(RUN)
    return [(str(rule), str(impact), [str(t) for t in targets]) for rule, impact, targets in found]
