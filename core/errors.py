"""One error hierarchy for the whole project.

Each error carries a stable ``code`` so adapters can map it to user-facing text (and the
API to an HTTP status) in one place, and a ``message`` that is safe to show a user.
"""

from __future__ import annotations

__all__ = [
    "AgentFailed",
    "ApprovalPending",
    "BacktrackError",
    "ContextTooLong",
    "ConversationBusy",
    "ConversationNotFound",
    "InvalidInput",
    "InvalidKey",
    "MessageTooLong",
    "NotPermitted",
    "RewindOutOfRange",
    "SettingsError",
    "ShuttingDown",
    "StaleApproval",
    "StorageUnavailable",
    "TurnInterrupted",
    "UsageCapReached",
]


class BacktrackError(Exception):
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SettingsError(BacktrackError):
    code = "bad_setting"


class InvalidKey(BacktrackError):
    code = "invalid_key"


class InvalidInput(BacktrackError):
    code = "invalid_input"


class ConversationNotFound(BacktrackError):
    code = "not_found"


class RewindOutOfRange(BacktrackError):
    code = "rewind_out_of_range"


class ConversationBusy(BacktrackError):
    code = "busy"


class NotPermitted(BacktrackError):
    code = "not_permitted"


class StorageUnavailable(BacktrackError):
    code = "storage_unavailable"

    def __init__(self, message: str = "Storage is unavailable right now; please try again shortly.") -> None:
        super().__init__(message)


class AgentFailed(BacktrackError):
    """The model (or a tool) failed mid-turn; the conversation stays where it was."""

    code = "agent_failed"

    def __init__(self, message: str = "The assistant failed to answer; please try again.") -> None:
        super().__init__(message)


class ContextTooLong(AgentFailed):
    """The model server refused the conversation as longer than its context: retrying never helps.

    An ``AgentFailed`` so every adapter that handles model failures handles this one too,
    with its own code and a message that says what does help.
    """

    code = "context_too_long"

    def __init__(
        self,
        message: str = (
            "This conversation no longer fits in the model's context window, so trying again "
            "will not help. Go back with /rewind, or start over with /forget; the operator can "
            "also lower BACKTRACK_CONTEXT_TOKENS to match the model server."
        ),
    ) -> None:
        super().__init__(message)


class MessageTooLong(ContextTooLong):
    """One message (or one tool result) is alone larger than the context budget: it was never
    sent to the model, because the trimmed window would have held nothing of it."""

    code = "message_too_long"

    def __init__(self, tokens: int, budget: int, *, from_tool: bool = False) -> None:
        what = "What the tools brought back for this question is" if from_tool else "That message is"
        super().__init__(
            f"{what} too long for the model: about {tokens:,} tokens, and the model is sent at most "
            f"{budget:,} (BACKTRACK_CONTEXT_TOKENS). Nothing was answered; send something shorter, "
            "or split it into several messages."
        )


class TurnInterrupted(BacktrackError):
    """A newer message replaced this turn (busy policy ``interrupt``); nothing was stored."""

    code = "interrupted"


class ApprovalPending(BacktrackError):
    """A new message while a tool call waits for approval: the request is kept, not lost."""

    code = "approval_pending"


class StaleApproval(BacktrackError):
    """A click on a request that was already decided or cancelled."""

    code = "stale_approval"


class ShuttingDown(BacktrackError):
    """A message that arrives while the bot stops: it is refused, not silently dropped."""

    code = "shutting_down"

    def __init__(self, message: str = "I'm restarting; please send that again in a minute.") -> None:
        super().__init__(message)


class UsageCapReached(BacktrackError):
    """A new question after today's token cap (per person or per place) is used up.

    Only new questions are refused: history, rewind and approvals go on as before.
    """

    code = "usage_cap"
