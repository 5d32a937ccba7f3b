"""The playground in real headless Chromium: boot, chat, inspector, storage modes, export and
import, escaping of user text, the console. Each test uses a fresh browser profile, and every
action ends with conftest's ``check``: no error banner, no console error, no uncaught exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import ARTIFACTS, Visit, check, take_problems
from playwright.sync_api import Locator, Page, expect

BOOT_TIMEOUT_MS = 120_000
TURN_TIMEOUT_MS = 30_000
NODES = ["receive", "recall", "understand", "respond", "complete"]


def open_page(visit: Visit, page: Page | None = None) -> Page:
    """Load the playground (or reload ``page``) and wait until Python is ready."""
    if page is None:
        page = visit.page()
        page.goto(visit.url)
    else:
        page.reload()
    status = page.locator("#status")
    page.wait_for_selector(
        '#status[data-state="ready"], #status[data-state="error"]', timeout=BOOT_TIMEOUT_MS
    )
    assert status.get_attribute("data-state") == "ready", page.locator("#error").inner_text()
    expect(page.locator("#chat-input")).to_be_enabled()
    check(page)
    return page


def click(page: Page, target: str | Locator) -> None:
    """Click a control and wait until the page is done with it; then ``check``."""
    (page.locator(target) if isinstance(target, str) else target).click()
    check(page)


def run_console(page: Page, code: str) -> str:
    page.fill("#console-code", code)
    click(page, "#console-run")
    return page.locator("#console-output").inner_text()


def import_file(page: Page, path: Path) -> None:
    page.set_input_files("#import-file", str(path))
    check(page)


def say(page: Page, text: str) -> str:
    """Send one chat message; returns the assistant's reply as the page shows it."""
    replies = page.locator("#chat-log li[data-role=assistant]")
    before = replies.count()
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    expect(replies).to_have_count(before + 1, timeout=TURN_TIMEOUT_MS)
    expect(page.locator("#chat-input")).to_be_enabled()
    check(page)
    return replies.last.inner_text()


def switch_mode(page: Page, mode: str) -> None:
    page.select_option("#mode-select", mode)
    check(page)
    click(page, "#mode-switch")
    expect(page.locator("#store-mode")).to_contain_text(
        "persistent" if mode == "persistent" else "in-memory"
    )


def inspector(page: Page) -> dict[str, Any]:
    """What the inspector shows: session ids, runs of the selected session, its messages."""
    return {
        "agents": page.locator("#agents li strong").all_inner_texts(),
        "sessions": [
            b.get_attribute("data-session-id") for b in page.locator("#sessions button").all()
        ],
        "runs": [
            (r.get_attribute("data-run-id"), r.get_attribute("data-status"))
            for r in page.locator("#runs li.run").all()
        ],
        "messages": [
            tuple(row.locator("td").all_inner_texts()[:3])
            for row in page.locator("#messages tbody tr").all()
        ],
    }


def test_boots_and_a_second_turn_uses_the_first(visit: Visit) -> None:
    page = open_page(visit)
    steps = page.locator("#boot-steps li").all_inner_texts()
    assert len(steps) == 5 and "Pyodide" in steps[0] and "micropip" in steps[2], steps

    first = say(page, "Hi, my name is Ada and I like chess")
    assert "Ada" in first and "Turn 1" in first
    second = say(page, "What is my name?")
    assert "your name is Ada" in second and "Turn 2" in second

    shown = inspector(page)
    assert shown["agents"] == ["playground-chat"]
    assert len(shown["sessions"]) == 1
    assert [status for _, status in shown["runs"]] == ["completed", "completed"]
    assert [m[0] for m in shown["messages"]] == ["1", "2", "3", "4"]
    assert [m[1] for m in shown["messages"]] == ["user", "assistant", "user", "assistant"]
    assert shown["messages"][2][2] == "What is my name?"
    last_run = page.locator("#runs li.run").last
    expect(last_run.locator(".badge")).to_have_text("completed")
    assert last_run.locator(".trace span").all_inner_texts() == NODES
    assert "What is my name?" in last_run.locator("dd").first.inner_text()  # input_data

    # Everything came from this one origin, the wheel included (no CDN).
    assert any("/wheels/runstore-" in url for url in visit.requests)
    foreign = [u for u in visit.requests if not u.startswith((visit.url, "data:", "blob:"))]
    assert foreign == []


def test_persistent_mode_survives_a_reload(visit: Visit) -> None:
    page = open_page(visit)
    switch_mode(page, "persistent")
    say(page, "I'm Grace and I like compilers")
    say(page, "what do you know?")
    before = inspector(page)
    assert len(before["runs"]) == 2 and len(before["messages"]) == 4

    page = open_page(visit, page)
    assert page.locator("#mode-select").input_value() == "persistent"
    assert inspector(page) == before
    assert page.locator("#chat-log li").count() == 4

    # The next run counts on from the state the previous run saved before the reload.
    third = say(page, "what was the previous run?")
    assert "Turn 3" in third and "completed" in third and "turn 2" in third


def test_a_second_tab_in_persistent_mode_is_refused_until_the_first_lets_go(visit: Visit) -> None:
    first = open_page(visit)
    switch_mode(first, "persistent")
    say(first, "my name is Tab")
    second = visit.page()  # same profile: same IndexedDB, and the mode is remembered
    second.goto(visit.url)
    second.wait_for_selector('#status[data-state="error"]', timeout=BOOT_TIMEOUT_MS)
    check(second)  # an ordinary refusal: one line, no error banner, no console error
    notice = second.locator("#notice-text").inner_text()
    assert "open in another tab" in notice and "\n" not in notice, notice
    second = open_page(visit, second)  # boots in memory: the refused mode is forgotten
    say(second, "my name is Mem")
    second.select_option("#mode-select", "persistent")
    click(second, "#mode-switch")  # still refused: the second tab keeps its in-memory store
    assert "open in another tab" in second.locator("#notice-text").inner_text()
    assert second.locator("#mode-select").input_value() == "memory"
    assert "your name is Mem" in say(second, "what is my name?")
    switch_mode(first, "memory")  # the first tab lets go of the persistent store
    switch_mode(second, "persistent")
    assert "your name is Tab" in say(second, "what is my name?")


def test_memory_mode_starts_empty_after_a_reload(visit: Visit) -> None:
    page = open_page(visit)
    assert page.locator("#mode-select").input_value() == "memory"
    say(page, "my name is Alan")
    assert len(inspector(page)["messages"]) == 2

    page = open_page(visit, page)
    assert inspector(page) == {"agents": [], "sessions": [], "runs": [], "messages": []}
    assert "Turn 1" in say(page, "hello again")  # a new conversation: nothing remembered


def test_switching_back_and_forth_keeps_each_store(visit: Visit) -> None:
    page = open_page(visit)
    say(page, "my name is Mem")
    switch_mode(page, "persistent")
    assert inspector(page)["sessions"] == []
    say(page, "my name is Disk")
    switch_mode(page, "memory")  # a new, empty in-memory store: switching is explicit
    assert inspector(page)["sessions"] == []
    switch_mode(page, "persistent")
    assert "your name is Disk" in say(page, "what is my name?")


def export_file(page: Page, folder: Path, name: str) -> Path:
    with page.expect_download() as download:
        click(page, "#export")
    path = folder / name
    download.value.save_as(path)
    return path


def test_export_then_import_into_a_fresh_page(visit: Visit, tmp_path: Path) -> None:
    page = open_page(visit)
    say(page, "Hi, my name is Ada")
    say(page, "I like tea")
    click(page, "#new-chat")
    expect(page.locator("#chat-log li.empty")).to_be_visible()
    assert "Turn 1" in say(page, "a second conversation")
    source = inspector(page)
    exported = export_file(page, tmp_path, "first.json")
    document = json.loads(exported.read_text())
    assert document["format"] == "runstore.export"
    assert (len(document["sessions"]), len(document["runs"])) == (2, 3)

    fresh = open_page(visit.other())  # a fresh browser profile: an empty store
    assert inspector(fresh)["sessions"] == []
    import_file(fresh, exported)
    expect(fresh.locator("#sessions button")).to_have_count(2)
    assert inspector(fresh) == source
    # Selecting the other session shows its runs and messages too.
    click(fresh, fresh.locator("#sessions button").last)
    expect(fresh.locator("#runs li.run")).to_have_count(2)
    assert [m[2] for m in inspector(fresh)["messages"]][::2] == ["Hi, my name is Ada", "I like tea"]
    # The imported store exports the same document; the chat continues the newest conversation.
    again = json.loads(export_file(fresh, tmp_path, "second.json").read_text())
    assert again == document
    assert "Turn 2" in say(fresh, "and now?")


def test_bad_import_is_refused_in_one_line_and_changes_nothing(
    visit: Visit, tmp_path: Path
) -> None:
    page = open_page(visit)
    say(page, "my name is Kay")
    before = inspector(page)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "runstore.export", "version": 1, "sessions": "no"}))
    not_json = tmp_path / "notes.txt"
    not_json.write_text("my notes, not an export")
    for path, problem in [(bad, "sessions: "), (not_json, "file: not a JSON document")]:
        import_file(page, path)  # a refusal: no error banner, no console error
        notice = page.locator("#notice-text").inner_text()
        assert notice.startswith(f"Import of {path.name} refused: {problem}"), notice
        assert "\n" not in notice and "Traceback" not in notice
        assert inspector(page) == before
    click(page, "#notice-close")
    expect(page.locator("#notice")).to_be_hidden()
    assert "your name is Kay" in say(page, "who am I?")


MARKUP = "<img src=x onerror=alert(1)>"


def test_user_text_is_shown_as_text_and_runs_nothing(visit: Visit) -> None:
    page = open_page(visit)
    say(page, MARKUP)
    user = page.locator("#chat-log li[data-role=user] .bubble")
    expect(user).to_have_text(MARKUP)
    assert page.locator("#messages tbody tr td.content").first.inner_text() == MARKUP
    assert MARKUP in page.locator("#runs li.run dd").first.inner_text()

    assert run_console(page, f"print({MARKUP!r})") == MARKUP + "\n"

    say(page, "one more turn")  # give a stray handler time to fire; the fixture checks dialogs
    assert page.locator("img").count() == 0
    assert visit.dialogs == []


def test_console_runs_code_against_the_live_store(visit: Visit) -> None:
    page = open_page(visit)
    say(page, "my name is Lin")
    output = page.locator("#console-output")

    shown = run_console(
        page,
        "sessions = await store.list_sessions()\n"
        "history = await store.get_chat_history(sessions[0].id)\n"
        "[(m.seq, m.role) for m in history]",
    )
    assert shown == "[(1, 'user'), (2, 'assistant')]\n"
    assert output.get_attribute("data-error") == "false"

    # The user's own error is the console's output, not a page error.
    assert "NotFoundError" in run_console(page, "await store.delete_session('no-such-session')")
    assert output.get_attribute("data-error") == "true"

    # Writes from the console show in the inspector: a session's title (as text), a delete.
    run_console(
        page, "await store.update_session(sessions[0].id, metadata={'title': 'Lin <b>1</b>'})"
    )
    expect(page.locator("#sessions button .title")).to_have_text("Lin <b>1</b>")
    run_console(page, "await store.delete_session(sessions[0].id)")
    expect(page.locator("#sessions button")).to_have_count(0)


def test_screenshot_after_a_conversation(visit: Visit) -> None:
    page = open_page(visit)
    say(page, "Hi, my name is Ada and I like chess")
    say(page, "I also like long walks")
    assert "you like chess; you like long walks" in say(page, "What do you know?")
    say(page, "what was the previous run?")
    click(page, "#console-run")  # the example code in the console
    expect(page.locator("#console-output")).to_contain_text("playground-user")
    click(page, page.locator("#runs details summary").last)  # the last run's state data
    expect(page.locator("#runs details pre").last).to_contain_text('"intent": "ask_last_run"')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_failed_boot_is_shown_as_an_error(visit: Visit) -> None:
    visit.context.route("**/wheels/*.whl", lambda route: route.fulfill(status=404))
    page = visit.page()
    page.goto(visit.url)
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "error", timeout=BOOT_TIMEOUT_MS
    )
    expect(page.locator("#error")).to_be_visible()
    title = page.locator("#error-title").inner_text()  # names the step that failed
    assert title.startswith("Startup failed: Installing the runstore wheel with micropip failed")
    expect(page.locator("#chat-input")).to_be_disabled()
    # A real error: the banner and a console error (the check after every action sees both).
    assert any(title in problem for problem in take_problems(page))
    click(page, "#error-close")
    expect(page.locator("#error")).to_be_hidden()
