"""Every control of the playground, one after another in one browser profile, each followed by
conftest's ``check`` (no error banner, no console error, no uncaught exception): chat turns (Enter
and the Send button), undo, fork, session list, run details, new conversation, the console (button
and Ctrl+Enter), export, switch to persistent storage, import, import again (a one-line refusal),
dismiss, reload (the persistent data is back), stats, prune (refused, then done), forget the
user (erase), switch back to memory. The test then compares the
controls it drove with every control on the page, so a new control cannot go untested."""

from __future__ import annotations

from pathlib import Path

from conftest import ARTIFACTS, Visit, check, console_messages
from playwright.sync_api import Locator, Page, expect
from test_playground import export_file, import_file, inspector, open_page, say, switch_mode

CONTROLS = "button, input, select, textarea, summary, a[href]"
# The key of a control: its id, or the id of its nearest holder with its tag and classes.
KEY = """e => e.id ? '#' + e.id : '#' + e.parentElement.closest('[id]').id + ' '
    + e.tagName.toLowerCase() + [...e.classList].map(c => '.' + c).join('')"""
# Shown only after an unexpected error: driven by test_a_failed_boot_is_shown_as_an_error.
ONLY_ON_ERROR = {"#error-close"}


def test_every_control_works_without_an_error(visit: Visit, tmp_path: Path) -> None:
    driven: set[str] = set()

    def use(page: Page, target: str | Locator) -> Locator:
        control = page.locator(target) if isinstance(target, str) else target
        driven.add(control.evaluate(KEY))
        return control

    def click(page: Page, target: str | Locator) -> None:
        use(page, target).click()
        check(page)

    page = open_page(visit)
    use(page, "#chat-input")
    assert "Ada" in say(page, "Hi, my name is Ada and I like chess")  # Enter
    page.fill("#chat-input", "my name is Bob")
    click(page, "#chat-send")
    expect(page.locator("#chat-log li[data-role=assistant]")).to_have_count(2)

    click(page, "#undo-turn")
    expect(page.locator("#messages tbody tr")).to_have_count(2)
    assert "your name is Ada" in say(page, "what is my name?")
    [parent] = inspector(page)["sessions"]

    click(page, page.locator('#messages tbody tr[data-seq="2"] button.fork'))
    expect(page.locator("#sessions button")).to_have_count(2)
    assert page.locator("#sessions button").first.get_attribute("data-parent-session-id") == parent
    expect(page.locator("#chat-log li[data-role]")).to_have_count(2)

    click(page, page.locator(f'#sessions button[data-session-id="{parent}"]'))
    expect(page.locator("#messages tbody tr")).to_have_count(4)  # seqs 1, 2, 5, 6
    click(page, page.locator("#runs details summary").last)
    expect(page.locator("#runs details pre").last).to_contain_text('"intent": "ask_name"')

    click(page, "#new-chat")
    expect(page.locator("#chat-log li.empty")).to_be_visible()
    assert "Turn 1" in say(page, "a third conversation")

    use(page, "#console-code").fill("len(await store.list_sessions())")
    click(page, "#console-run")
    expect(page.locator("#console-output")).to_have_text("3\n")
    page.fill("#console-code", "len(await store.list_runs(" + repr(parent) + "))")
    page.press("#console-code", "Control+Enter")
    check(page)
    expect(page.locator("#console-output")).to_have_text("3\n")

    exported = export_file(page, tmp_path, "memory.json")
    driven.add("#export")
    source = inspector(page)

    use(page, "#mode-select")
    driven.add("#mode-switch")
    switch_mode(page, "persistent")
    assert inspector(page)["sessions"] == []
    use(page, "#import-file")
    import_file(page, exported)
    expect(page.locator("#sessions button")).to_have_count(3)
    assert inspector(page)["sessions"] == source["sessions"]

    # The same export again: the store refuses it in one line; the traceback is in the console
    # as a warning, for developers; nothing changed.
    import_file(page, exported)
    notice = page.locator("#notice-text").inner_text()
    assert notice.startswith("Import of memory.json refused: "), notice
    assert "\n" not in notice and "Traceback" not in notice
    warnings = [text for kind, text in console_messages(page) if kind == "warning"]
    assert any(notice in text and "Traceback" in text for text in warnings), warnings
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "refusal.png"))
    click(page, "#notice-close")
    expect(page.locator("#notice")).to_be_hidden()
    before = inspector(page)

    page = open_page(visit, page)  # reload: the persistent store is back as it was
    assert page.locator("#mode-select").input_value() == "persistent"
    assert inspector(page) == before
    assert "Turn 2" in say(page, "and after the reload?")
    on_page = set(page.locator(CONTROLS).evaluate_all(f"els => els.map({KEY})"))

    # Search over every conversation (search_messages).
    use(page, "#search-query").fill("CHESS")
    click(page, "#search-run")
    hits = page.locator("#search-hits li").filter(has_text="Hi, my name is Ada and I like chess")
    expect(hits).to_have_count(2)  # the parent's message and the fork's copy of it
    assert parent in {hit.get_attribute("data-session-id") for hit in hits.all()}

    # Lifecycle on the persistent store: stats, prune (retention), erase (forget the user).
    stats = page.locator("#stats")
    expect(stats).to_contain_text(" 3 sessions ")
    messages = int(stats.inner_text().split(" messages")[0].rsplit(" ", 1)[1])
    use(page, "#keep-last").fill("-1")
    click(page, "#prune")  # refused in one line: nothing removed
    notice = page.locator("#notice-text").inner_text()
    assert notice.startswith("Prune refused: keep_last: must be between 0 and"), notice
    expect(stats).to_contain_text(f" {messages} messages ")
    page.fill("#keep-last", "1")
    click(page, "#prune")  # every session keeps its newest message
    expect(page.locator("#lifecycle-result")).to_have_text(
        f"Pruned 0 sessions, 0 runs, {messages - 3} messages, 0 entries."
    )
    expect(stats).to_contain_text(" 3 sessions · ")
    expect(stats).to_contain_text(" 3 messages ")
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    click(page, "#erase-user")
    expect(page.locator("#lifecycle-result")).to_contain_text("Forgot 3 sessions, ")
    expect(stats).to_contain_text(": 0 sessions · 0 runs · 0 messages · 0 entries")
    expect(page.locator("#sessions button")).to_have_count(0)
    assert "Turn 1" in say(page, "my name is Eve")  # a new conversation

    switch_mode(page, "memory")
    assert inspector(page)["sessions"] == []
    assert on_page - ONLY_ON_ERROR - driven == set(), "controls no test drives"
    assert "#messages button.fork" in on_page and "#sessions button" in on_page
