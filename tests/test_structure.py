"""The package's import graph has no cycle (issue 24: run.py and experiments.py imported each
other for the run folder's helpers, which now live in runfolder.py), counting the imports made
inside functions too: a cycle there is a tangle of responsibilities even when Python copes."""
import ast
from pathlib import Path

import mnist_logreg

PACKAGE = Path(mnist_logreg.__file__).parent


def import_graph() -> dict:
    graph = {}
    for path in PACKAGE.glob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = targets - {path.stem}
    return graph


def cycle(graph):
    """A cycle of module names, or None (depth-first search, colouring visited modules)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n in graph and n not in state and (found := visit(n)):
                return found
        state[m] = "done"
        stack.pop()
        return None
    return next((c for m in sorted(graph) if m not in state and (c := visit(m))), None)


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"run", "experiments", "runfolder"} <= set(graph)
    assert cycle(graph) is None, " -> ".join(cycle(graph))
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the search finds one


def test_the_run_folders_file_names_are_spelled_once():
    """checkpoint.pt, config.toml, status.json and report.html: runfolder.py names them."""
    for path in PACKAGE.rglob("*.py"):
        if path.name != "runfolder.py":
            text = path.read_text(encoding="utf-8")
            for name in ('"checkpoint.pt"', '"config.toml"', '"status.json"', '"report.html"', '"metrics.json"'):
                assert name not in text, f"{path.name} spells {name}: use mnist_logreg.runfolder's constant"
