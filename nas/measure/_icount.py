"""Instructions per inference, counted by valgrind's callgrind: the ruler that does not move.

Collection is switched on only inside the runtime's invoke function, so the count is the
runtime's work for one inference and nothing else; it is identical on every repeat and does not
depend on the host's vector extensions (valgrind presents one virtual CPU). Many models are
counted in one valgrind process (a dump after each invoke), in parallel processes, one per core.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DependencyError
# invokes per model (the second, warm count is kept: the first differs by < 0.1%, lazy set-up), and
# the runner's exit status after a failed invoke
from ._icount_runner import INVOKE_FAILED as _INVOKE_FAILED, INVOKES as _INVOKES

__all__ = ["INVOKE_FUNCTIONS", "Count", "count_instructions", "require_valgrind", "invokes"]

#: The function callgrind counts inside, per runtime.
INVOKE_FUNCTIONS = {
    "litert": "tflite::Subgraph::Invoke()",
    "tflm": "tflite::micro::MicroInterpreter::Invoke()",
}
_RUNNER = Path(__file__).with_name("_icount_runner.py")


@dataclass(frozen=True)
class Count:
    instructions: int | None  # None: the runtime could not run the model
    reason: str = ""


def require_valgrind() -> str:
    path = shutil.which("valgrind")
    if path is None:
        raise DependencyError(
            "instruction counting needs valgrind, which is not installed: "
            "`sudo apt-get install valgrind` (Debian/Ubuntu) or `sudo dnf install valgrind` (Fedora)"
        )
    return path


def invokes(model: bytes, runtime: str, timeout_s: float = 600) -> bool:
    """Whether `runtime` ("litert" or "tflm") loads, allocates and invokes `model` (zero input): the
    counting runner without valgrind, in a process of its own, as a kernel that aborts takes its
    process with it."""
    if runtime not in INVOKE_FUNCTIONS:
        raise ConfigError(f"runtime {runtime!r} is not one of {sorted(INVOKE_FUNCTIONS)}")
    with tempfile.TemporaryDirectory() as tmp:
        path, status = Path(tmp) / "model.tflite", Path(tmp) / "status"
        path.write_bytes(model)
        subprocess.run([sys.executable, str(_RUNNER), runtime, str(status), str(path)], capture_output=True,
                       timeout=timeout_s)
        return status.is_file() and status.read_text().startswith("ok")


def count_instructions(models: list[bytes], runtime: str, workers: int | None = None) -> list[Count]:
    """Instructions one inference of each model executes under `runtime` ("litert": LiteRT,
    1 thread, default kernels; "tflm": TFLite Micro's reference kernels)."""
    if runtime not in INVOKE_FUNCTIONS:
        raise ConfigError(f"runtime {runtime!r} is not one of {sorted(INVOKE_FUNCTIONS)}")
    valgrind = require_valgrind()
    if not models:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(models)))
    with tempfile.TemporaryDirectory(prefix="nas-icount-") as tmp:
        paths = []
        for i, model in enumerate(models):
            path = Path(tmp) / f"m{i}.tflite"
            path.write_bytes(model)
            paths.append(path)
        # Small chunks handed out as workers free up: model costs differ by 1000x, and one valgrind
        # start (a few seconds) per chunk is cheap next to an unlucky static split.
        size = max(1, min(8, len(models) // (4 * workers)))
        chunks = [list(range(i, min(i + size, len(models)))) for i in range(0, len(models), size)]
        results: dict[str, Count] = {}  # by model path
        with ThreadPoolExecutor(workers) as pool:
            for part in pool.map(lambda c: _count_chunk(valgrind, runtime, [paths[i] for i in c], Path(tmp)), chunks):
                results.update(part)
        return [results[str(p)] for p in paths]


def _count_chunk(valgrind: str, runtime: str, paths: list[Path], tmp: Path) -> dict[str, Count]:
    """Count `paths` in as few valgrind processes as failures allow."""
    out: dict[str, Count] = {}
    todo = list(paths)
    while todo:
        run_dir = Path(tempfile.mkdtemp(dir=tmp))
        status = run_dir / "status"
        function = INVOKE_FUNCTIONS[runtime]
        cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={function}",
               f"--dump-after={function}", f"--callgrind-out-file={run_dir}/cg.out", f"--log-file={run_dir}/valgrind.log",
               sys.executable, str(_RUNNER), runtime, str(status), *map(str, todo)]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        lines = status.read_text().splitlines() if status.exists() else []
        dumps = _dumps(run_dir)
        next_dump = 0
        done = 0
        for line in lines:
            word, index, *rest = line.split(" ", 2)
            path = todo[int(index)]
            if word == "ok":
                counts = dumps[next_dump:next_dump + _INVOKES]
                next_dump += _INVOKES
                if len(counts) < _INVOKES:
                    out[str(path)] = Count(None, "callgrind wrote fewer dumps than invokes")
                else:
                    out[str(path)] = Count(counts[-1])
            else:
                out[str(path)] = Count(None, rest[0] if rest else "failed")
            done = int(index) + 1
        # the process died on todo[done], unless it exited after writing a failed invoke's line
        failed_invoke = proc.returncode == _INVOKE_FAILED and lines and lines[-1].startswith("fail")
        if done < len(todo) and not failed_invoke:
            if str(todo[done]) not in out:
                out[str(todo[done])] = Count(None, _crash_reason(proc.returncode, run_dir))
            done += 1
        todo = todo[done:]
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


def _dumps(run_dir: Path) -> list[int]:
    """Instruction totals of callgrind's numbered dumps (cg.out.1, cg.out.2, ...), in order."""
    numbered = []
    for path in run_dir.glob("cg.out.*"):
        suffix = path.name.rsplit(".", 1)[1]
        if suffix.isdigit():
            match = re.search(r"^summary:\s*(\d+)", path.read_text(errors="replace"), re.M)
            numbered.append((int(suffix), int(match.group(1)) if match else 0))
    return [total for _, total in sorted(numbered)]


def _crash_reason(code: int, run_dir: Path) -> str:
    log = (run_dir / "valgrind.log").read_text(errors="replace") if (run_dir / "valgrind.log").exists() else ""
    match = re.search(r"Process terminating with default action of signal (\d+) \((\w+)\)", log)
    if match:
        where = re.search(r"by 0x[0-9A-F]+: (tflite::[^(]+)\(", log[match.end():])
        return f"the runtime crashed ({match.group(2)}{' in ' + where.group(1).strip() if where else ''})"
    return f"the counting process exited with status {code}"
