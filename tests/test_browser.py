"""The browser check's reading of DevTools events (the page probe itself runs in make test)."""

from helpers.book.browser import NOISE, js_errors


def test_page_errors_are_reported_and_offline_network_misses_are_not():
    events = [
        {"method": "Runtime.exceptionThrown",
         "params": {"exceptionDetails": {"exception": {"description": "SyntaxError: x\n at y"}}}},
        {"method": "Runtime.consoleAPICalled",
         "params": {"type": "error", "args": [{"value": "bad theme"}]}},
        {"method": "Runtime.consoleAPICalled",
         "params": {"type": "log", "args": [{"value": "ok"}]}},
        {"method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "source": "network", "text": "net::ERR_NAME_NOT_RESOLVED",
            "url": "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"}}},
        {"method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "source": "network", "text": "net::ERR_FILE_NOT_FOUND",
            "url": "file:///site/_static/missing.js"}}},
    ]
    found = js_errors(events)
    assert found[0] == "SyntaxError: x" and found[1] == "bad theme"
    assert len(found) == 3 and "missing.js" in found[2]


def test_noise_the_check_fails_on():
    assert set(NOISE) == {"stderr_blocks", "bare_glue", "progress_bars"}
