"""A deterministic chat workflow on runstore's public API (no language model).

One user message is one run. The workflow walks five nodes and saves its ``WorkflowState``
after each: ``receive`` -> ``recall`` -> ``understand`` -> ``respond`` -> ``complete``.
Its memory is the session's chat history (``get_chat_history``) plus the state saved by the
run of the newest message still in the history (turn count, name, facts), so replies visibly
use earlier turns, and an undone turn (``truncate_history``) or a fork (``fork_session``) is
forgotten. Messages carry a token count (here: words), metadata and an idempotency key.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from runstore import DataStorage, WorkflowState

WORKFLOW_NAME = "playground-chat"
DESCRIPTION = "Deterministic chat: remembers your name and facts, counts turns."
EXTERNAL_ID = "playground-user"  # the one user of this page: the session is found by it
HISTORY_LIMIT = 50

_NAME = re.compile(r"\b(?:my name is|call me|i am|i'm)\s+([A-Za-z][\w'-]{0,39})", re.I)
_NOT_NAMES = {"a", "an", "the", "not", "so", "very", "here", "fine", "good", "ok", "okay"}
_LIKE = re.compile(r"\bi (?:also |really )?(?:like|love|enjoy)\s+([^.!?,\n]{1,60})", re.I)
_ASK_NAME = re.compile(r"\b(?:what(?:'s| is) my name|who am i)\b", re.I)
_ASK_FACTS = re.compile(r"\bwhat do you (?:know|remember)\b", re.I)
_ASK_LAST_RUN = re.compile(r"\b(?:previous|last) (?:run|turn|state)\b", re.I)
_ASK_LAST_SAID = re.compile(r"\bwhat did i (?:just )?say\b", re.I)


@dataclass(frozen=True)
class Turn:
    """What one call of ``chat_turn`` did."""

    run_id: str
    session_id: str
    turn: int
    reply: str


def _extract(text: str) -> tuple[str | None, list[str]]:
    """The name and the likes stated in one user message."""
    name = None
    for match in _NAME.finditer(text):
        if match.group(1).lower() not in _NOT_NAMES:
            name = match.group(1).capitalize()
    likes = [m.group(1).strip() for m in _LIKE.finditer(text)]
    return name, likes


def _remember(history: list[Any], previous: dict[str, Any]) -> tuple[str | None, list[str]]:
    """Name and facts: the previous run's state, then what the history says (newest wins)."""
    name: str | None = previous.get("name")
    facts: list[str] = list(previous.get("facts", []))
    for message in history:
        if message.role != "user" or not message.content:
            continue
        said_name, likes = _extract(message.content)
        name = said_name or name
        facts.extend(like for like in likes if like not in facts)
    return name, facts


def _tokens(text: str) -> int:
    """A stand-in for a tokenizer: the number of words."""
    return len(text.split())


def _intent(text: str) -> str:
    for intent, pattern in (
        ("ask_name", _ASK_NAME),
        ("ask_facts", _ASK_FACTS),
        ("ask_last_run", _ASK_LAST_RUN),
        ("ask_last_said", _ASK_LAST_SAID),
    ):
        if pattern.search(text):
            return intent
    return "chat"


def _compose(
    intent: str,
    text: str,
    turn: int,
    memory: dict[str, Any],
    history: list[Any],
    previous_state: WorkflowState | None,
) -> str:
    name = memory["name"]
    facts: list[str] = memory["facts"]
    said_name, likes = _extract(text)
    if intent == "ask_name":
        if name is None:
            return f"Turn {turn}: you have not told me your name yet."
        return f"Turn {turn}: your name is {name}."
    if intent == "ask_facts":
        known = [f"your name is {name}"] if name else []
        known += [f"you like {fact}" for fact in facts]
        if not known:
            return f"Turn {turn}: nothing yet. Tell me your name or what you like."
        return f"Turn {turn}: I know that " + "; ".join(known) + "."
    if intent == "ask_last_run":
        if previous_state is None:
            return f"Turn {turn}: this is the first run of our conversation."
        trace = " > ".join(previous_state.trace)
        return (
            f"Turn {turn}: the previous run ended '{previous_state.status}' "
            f"after {trace}; it was turn {previous_state.data.get('turn')}."
        )
    if intent == "ask_last_said":
        said = [m.content for m in history if m.role == "user" and m.content]
        if not said:
            return f"Turn {turn}: you have not said anything before this."
        return f'Turn {turn}: you last said "{said[-1]}".'
    greeting = f"Nice to meet you, {said_name}!" if said_name else None
    if greeting is None and name:
        greeting = f"Welcome back, {name}." if turn > 1 else f"Hello, {name}."
    parts = [greeting or "Hello!"]
    if likes:
        parts.append(f"Noted: you like {', '.join(likes)}.")
    if not said_name and not likes:
        parts.append(f'You said "{text}".')
    if turn == 1:
        parts.append("Later, ask me what your name is.")
    return f"Turn {turn}: " + " ".join(parts)


async def chat_turn(store: DataStorage, text: str, *, session_id: str | None = None) -> Turn:
    """Answer one user message as one run, in the user's latest session (or ``session_id``)."""
    started = time.perf_counter()
    handle = await store.initialize_run(
        workflow_name=WORKFLOW_NAME,
        description=DESCRIPTION,
        session_id=session_id,
        external_id=EXTERNAL_ID,
        input_data={"message": text},
    )
    state = WorkflowState(
        workflow_name=WORKFLOW_NAME,
        status="running",
        input_data={"message": text},
        run_id=handle.run_id,
        session_id=handle.session_id,
        agent_id=handle.agent_id,
    )

    async def step(node: str, **data: Any) -> None:
        state.current_node = node
        state.trace.append(node)
        state.data.update(data)
        await store.save_state(handle.run_id, state)

    try:
        await step("receive")
        await store.add_chat_message(
            agent_id=handle.agent_id,
            session_id=handle.session_id,
            run_id=handle.run_id,
            role="user",
            content=text,
            token_count=_tokens(text),
            idempotency_key=f"{handle.run_id}:user",  # a retried step stores it once
        )

        history = await store.get_chat_history(
            handle.session_id, HISTORY_LIMIT, exclude_run_id=handle.run_id
        )
        previous_run_id = next((m.run_id for m in reversed(history) if m.run_id), None)
        previous_state = await store.load_state(previous_run_id) if previous_run_id else None
        previous = previous_state.data if previous_state is not None else {}
        said_before = sum(1 for m in history if m.role == "user")
        turn = int(previous.get("turn", said_before)) + 1
        name, facts = _remember(history, previous)
        await step(
            "recall",
            turn=turn,
            history_messages=len(history),
            previous_run_id=previous_run_id,
        )

        said_name, likes = _extract(text)
        name = said_name or name
        facts += [like for like in likes if like not in facts]
        intent = _intent(text)
        await step("understand", intent=intent, name=name, facts=facts)

        reply = _compose(
            intent, text, turn, {"name": name, "facts": facts}, history, previous_state
        )
        await store.add_chat_message(
            agent_id=handle.agent_id,
            session_id=handle.session_id,
            run_id=handle.run_id,
            role="assistant",
            content=reply,
            metadata={"intent": intent, "turn": turn},
            token_count=_tokens(reply),
            idempotency_key=f"{handle.run_id}:assistant",
        )
        await step("respond", reply_chars=len(reply))

        duration = time.perf_counter() - started
        state.status = "completed"
        state.output_data = {"reply": reply, "turn": turn}
        state.duration_seconds = duration
        await step("complete")
        await store.update_run(
            handle.run_id, output_data={"reply": reply, "turn": turn}, duration_seconds=duration
        )
    except Exception as exc:
        state.status = "failed"
        state.error = f"{type(exc).__name__}: {exc}"
        await store.save_state(handle.run_id, state)
        raise
    return Turn(handle.run_id, handle.session_id, turn, reply)
