"""A minimal agent loop: a model writes Python, a Warren sandbox runs it, and the output
goes back to the model as the next observation, until the model gives an answer.

The model call is stubbed with a fixed list of code cells (one of which fails, to show
the error being fed back), so the example runs without an LLM. Replace `model()` with a
call to your model of choice.

Run: WARREN_API_URL=... WARREN_API_KEY=... python3 agent_loop.py
Prints each turn, then "agent finished after 4 turns: final answer 656".
"""

from __future__ import annotations

from typing import Dict, List, Optional

from warren import Execution, Sandbox

# What the "model" writes, turn by turn.
CELLS = [
    "import math\n"
    "primes = [n for n in range(2, 50) if all(n % d for d in range(2, math.isqrt(n) + 1))]\n"
    "print(primes)",
    "total = sum(primes)\ntotal / count",  # a mistake: count is not defined
    "total = sum(primes)\ntotal",
    "answer = total * 2\nprint('doubling', total)\nanswer",
]


def model(history: List[Dict[str, str]]) -> Optional[str]:
    """Stand-in for an LLM call: returns the next cell, or None when it is done."""
    turns = sum(1 for m in history if m["role"] == "assistant")
    return CELLS[turns] if turns < len(CELLS) else None


def observe(ex: Execution) -> str:
    """Turn an execution into the text the model sees next."""
    parts = []
    if ex.logs.stdout:
        parts.append("stdout: " + "".join(ex.logs.stdout).strip())
    if ex.logs.stderr:
        parts.append("stderr: " + "".join(ex.logs.stderr).strip())
    if ex.error is not None:
        parts.append(f"error: {ex.error.name}: {ex.error.value}")
    if ex.text is not None:
        parts.append("value: " + ex.text)
    return "\n".join(parts) or "(no output)"


def main() -> None:
    history: List[Dict[str, str]] = [
        {"role": "user", "content": "What is twice the sum of the primes below 50? Use Python."},
    ]
    answer: Optional[str] = None
    turns = 0
    with Sandbox.create(template="code-interpreter", timeout=300) as sbx:
        while (code := model(history)) is not None:
            turns += 1
            history.append({"role": "assistant", "content": code})
            ex = sbx.run_code(code, timeout=60)
            observation = observe(ex)
            history.append({"role": "tool", "content": observation})
            print(f"--- turn {turns}\n{code}\n>>> {observation}")
            if ex.error is None and ex.text is not None:
                answer = ex.text
    print(f"agent finished after {turns} turns: final answer {answer}")


if __name__ == "__main__":
    main()
