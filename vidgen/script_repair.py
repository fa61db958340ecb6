"""A model's script that breaks our rules is repaired or asked for again, never blamed on the user.

A script writer's answer can parse and still break the pipeline's rules (`Script.problems`): scenes
numbered from 1 or with gaps, a scene count outside the channel's range, an empty narration. The
user's brief was fine; the model's output was off. So:

1. what is safe to repair is repaired silently: the scene numbering (`renumbered`), since the order
   the model gave is the order it meant;
2. anything else is asked again *once*, with the problems stated (`ScriptRequest.previous_problems`,
   which every writer honours);
3. only then does the step fail, as an API failure (`UnusableScriptError`, Error: API Failure on
   the board), carrying the model's last answer so the run can show what it said.

Both calls are paid, so the result's cost is the sum of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vidgen.errors import ApiFailureError
from vidgen.models import Script
from vidgen.providers.base import Cost, ScriptRequest, ScriptResult

ANSWER_IN_MESSAGE_CHARS = 600  # the model's answer quoted in the error text (the full one is on `.answer`)


class UnusableScriptError(ApiFailureError):
    """The script writer's answer cannot be produced; `answer` is what it said, `problems` why not.

    `cost` is what the failed call(s) cost, so the spend is still recorded.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        problems: list[str],
        answer: str,
        cost: Cost | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message, provider=provider, status_code=status_code)
        self.problems = list(problems)
        self.answer = answer
        self.cost = cost or Cost()


def renumbered(script: Script) -> Script:
    """The script with its scenes indexed 0, 1, 2, ... in the order the model numbered them.

    Scenes are ordered by the model's own index (ties keep the order they were written in), so
    "1, 2, 3" becomes "0, 1, 2" and "0, 2, 5" becomes "0, 1, 2"; nothing but the index changes.
    """
    ordered = sorted(enumerate(script.scenes), key=lambda pair: (pair[1].index, pair[0]))
    scenes = [scene.model_copy(update={"index": i}) for i, (_, scene) in enumerate(ordered)]
    return script.model_copy(update={"scenes": scenes})


def add_costs(first: Cost, second: Cost) -> Cost:
    """Two calls of the same writer as one ledger line."""
    return Cost(usd=round(first.usd + second.usd, 8), units=first.units + second.units, unit=first.unit or second.unit)


def _quoted(answer: str) -> str:
    text = " ".join(answer.split())
    return text if len(text) <= ANSWER_IN_MESSAGE_CHARS else text[:ANSWER_IN_MESSAGE_CHARS] + " …"


@dataclass(frozen=True)
class _Attempt:
    script: Script | None  # None when the writer refused its own answer
    cost: Cost
    problems: list[str]
    answer: str  # the model's answer as text, for the error


def _attempt(
    write: Callable[[ScriptRequest], ScriptResult], request: ScriptRequest, *, min_scenes: int, max_scenes: int
) -> _Attempt:
    """One call, with the numbering repaired and the problems left.

    A writer that already refused its answer (`UnusableScriptError`, e.g. JSON outside the schema)
    is treated like one whose answer has problems: its problems are what it reported.
    """
    try:
        result = write(request)
    except UnusableScriptError as exc:
        return _Attempt(None, exc.cost, exc.problems, exc.answer)
    script = renumbered(result.script)
    problems = script.problems(min_scenes=min_scenes, max_scenes=max_scenes)
    return _Attempt(script, result.cost, problems, result.script.model_dump_json())


def write_checked_script(
    write: Callable[[ScriptRequest], ScriptResult],
    request: ScriptRequest,
    *,
    provider: str,
    min_scenes: int,
    max_scenes: int,
) -> ScriptResult:
    """A script that keeps our rules, asking the writer at most twice; else `UnusableScriptError`."""
    first = _attempt(write, request, min_scenes=min_scenes, max_scenes=max_scenes)
    if first.script is not None and not first.problems:
        return ScriptResult(script=first.script, cost=first.cost)
    retry = request.model_copy(update={"previous_problems": first.problems})
    second = _attempt(write, retry, min_scenes=min_scenes, max_scenes=max_scenes)
    cost = add_costs(first.cost, second.cost)
    if second.script is not None and not second.problems:
        return ScriptResult(script=second.script, cost=cost)
    raise UnusableScriptError(
        f"unexpected response: the model's script broke the pipeline's rules twice, though the second request"
        f" stated them ({'; '.join(second.problems)}); its answer: {_quoted(second.answer)}",
        provider=provider,
        problems=second.problems,
        answer=second.answer,
        cost=cost,
    )
