"""`--tasks` resolved to MTEB tasks: MTEB's own names (data from the hub, its cache, or a local
copy under `--datasets`), task folders (`local_tasks`), and Python files or modules that define
`AbsTask` subclasses."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import mteb
from mteb.abstasks import AbsTask

from embedserve.evaluation.local_tasks import is_task_folder, task_from_folder


class TaskError(ValueError):
    """A `--tasks` entry that names nothing runnable; the message says what would."""


def resolve_tasks(specs: Sequence[str], datasets: Path | None = None) -> list[AbsTask]:
    """One task per MTEB name or task folder; every task a Python file or module defines."""
    tasks: list[AbsTask] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not is_task_folder(path):
                raise TaskError(f"{spec}: a task folder needs a task.json")
            tasks.append(task_from_folder(path))
        elif spec.endswith(".py"):
            tasks.extend(_tasks_in(_module_from_file(path), spec))
        elif ":" in spec:  # package.module: (all its tasks) or package.module:TaskClass
            tasks.extend(_tasks_from_import(spec))
        else:
            tasks.append(_mteb_task(spec, datasets))
    names = [task.metadata.name for task in tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TaskError(f"task named twice: {', '.join(repeated)}")
    return tasks


def _mteb_task(name: str, datasets: Path | None) -> AbsTask:
    try:
        task = mteb.get_task(name)
    except KeyError as exc:
        raise TaskError(
            f"{name}: not an MTEB task name, a task folder (with task.json) or a .py file "
            f"defining tasks ({exc.args[0] if exc.args else 'unknown'})"
        ) from None
    if datasets is not None:
        local = datasets.expanduser() / task.metadata.dataset["path"]
        if local.is_dir():
            dataset = dict(task.metadata.dataset) | {"path": str(local)}
            task.metadata = task.metadata.model_copy(update={"dataset": dataset})
    return task


def _module_from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(f"embedserve_eval_tasks_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise TaskError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tasks_from_import(spec: str) -> list[AbsTask]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskError(f"{spec}: {exc}") from None
    if not attribute:
        return _tasks_in(module, spec)
    found = getattr(module, attribute, None)
    if not (inspect.isclass(found) and issubclass(found, AbsTask)):
        raise TaskError(f"{spec}: not an MTEB task class (a subclass of mteb.AbsTask)")
    return [found()]


def _tasks_in(module: ModuleType, spec: str) -> list[AbsTask]:
    found = [task_class() for task_class in _task_classes(vars(module).values(), module)]
    if not found:
        raise TaskError(f"{spec}: defines no MTEB task (a subclass of mteb.AbsTask)")
    return found


def _task_classes(values: Iterable[object], module: ModuleType) -> list[type[AbsTask]]:
    return [
        value
        for value in values
        if inspect.isclass(value)
        and issubclass(value, AbsTask)
        and value.__module__ == module.__name__
        and not inspect.isabstract(value)
        and "metadata" in vars(value)
    ]
