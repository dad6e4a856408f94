"""The layout of train/: the pipeline that makes the shipped model lives in
train/, the experiments in train/experiments/. Experiments may import the
pipeline; the pipeline never imports an experiment, and no modules import
each other in a circle. Imports are read with `ast` from every file (top
level and inside functions), so lazy imports count too."""

import ast
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
EXPERIMENTS = HERE / "experiments"
SKIP = {"runs", "__pycache__"}  # training output (ignored by git), bytecode


def python_files():
    return sorted(p for p in HERE.rglob("*.py")
                  if not SKIP & set(p.relative_to(HERE).parts[:-1])
                  and not any(part.startswith(".") for part in p.relative_to(HERE).parts))


def imported_names(path):
    """Top-level names of everything `path` imports: import statements
    anywhere in the file, and importlib.import_module / __import__ of a
    string constant."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if fname in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def project_graph():
    """({module: kind}, {module: set of project modules it imports}); kind is
    'pipeline' (train/*.py) or 'experiment' (train/experiments/*.py)."""
    files = python_files()
    kind, where = {}, {}
    for p in files:
        if p.parent == HERE:
            k = "pipeline"
        elif p.parent == EXPERIMENTS:
            k = "experiment"
        else:
            raise AssertionError(f"{p.relative_to(HERE)}: train/ has two places for code, "
                                 "train/ (the pipeline) and train/experiments/")
        # the scripts put both folders on sys.path, so a name means one module
        assert p.stem not in kind, f"{p.stem}.py is in both {where[p.stem]} and {p.parent}"
        kind[p.stem], where[p.stem] = k, p.parent
    graph = {p.stem: (imported_names(p) & set(kind)) - {p.stem} for p in files}
    return kind, graph


def find_cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_both_parts_are_found():
    kind, _ = project_graph()
    assert {"train", "export", "model", "evaluate"} <= {m for m, k in kind.items() if k == "pipeline"}
    assert {"student", "probe", "ssl_convert"} <= {m for m, k in kind.items() if k == "experiment"}


def test_the_pipeline_never_imports_an_experiment():
    kind, graph = project_graph()
    bad = sorted(f"{m} imports {d}" for m, deps in graph.items() if kind[m] == "pipeline"
                 for d in deps if kind[d] == "experiment")
    assert not bad, "pipeline modules import experiments: " + "; ".join(bad)


def test_no_import_circle():
    _, graph = project_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_see_lazy_imports_and_circles(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from student import x\n    import importlib\n"
                 "    importlib.import_module('probe.sub')\n")
    assert imported_names(f) == {"os", "student", "importlib", "probe"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
