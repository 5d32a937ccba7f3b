"""Messages v2 in the playground, in real headless Chromium: token counts and metadata in the
inspector, "undo last turn", and "fork from here" with the fork in the session list."""

from __future__ import annotations

from conftest import Visit
from playwright.sync_api import expect
from test_playground import click, inspector, open_page, say


def test_undo_last_turn_forgets_it_and_never_reuses_its_seqs(visit: Visit) -> None:
    page = open_page(visit)
    say(page, "my name is Ada")
    say(page, "my name is Bob")
    rows = page.locator("#messages tbody tr")
    expect(rows).to_have_count(4)
    assert rows.nth(0).locator("td.tokens").inner_text() == "4"  # words of "my name is Ada"
    assert '"intent":"chat"' in rows.nth(1).locator("td.metadata").inner_text()
    assert rows.nth(0).locator("td.metadata").inner_text() == ""

    click(page, "#undo-turn")
    expect(rows).to_have_count(2)
    expect(page.locator("#chat-log li[data-role]")).to_have_count(2)
    assert "your name is Ada" in say(page, "what is my name?")  # Bob's turn is gone
    assert [m[0] for m in inspector(page)["messages"]] == ["1", "2", "5", "6"]


def test_fork_from_a_message_continues_in_a_new_session(visit: Visit) -> None:
    page = open_page(visit)
    say(page, "my name is Ada")
    say(page, "I like tea")
    [parent] = inspector(page)["sessions"]

    click(page, page.locator('#messages tbody tr[data-seq="2"] button.fork'))
    sessions = page.locator("#sessions button")
    expect(sessions).to_have_count(2)
    fork = sessions.first  # the newest activity
    assert fork.get_attribute("data-parent-session-id") == parent
    expect(fork).to_contain_text("fork of " + parent[:8] + " @2")
    expect(page.locator("#chat-log li[data-role]")).to_have_count(2)  # the chat is the fork

    assert "your name is Ada" in say(page, "what is my name?")  # the copies are remembered
    assert "Nice to meet you, Cy" in say(page, "call me Cy")
    shown = inspector(page)
    assert shown["sessions"][0] == fork.get_attribute("data-session-id")
    assert [m[0] for m in shown["messages"]] == ["1", "2", "3", "4", "5", "6"]

    click(page, sessions.last)  # the parent is unchanged
    expect(page.locator("#messages tbody tr")).to_have_count(4)
    assert [m[2] for m in inspector(page)["messages"]][::2] == ["my name is Ada", "I like tea"]
