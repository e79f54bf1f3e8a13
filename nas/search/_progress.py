"""What a search shows as it runs: its plan, then a progress bar (tqdm on stderr; a notebook widget in
Jupyter, through tqdm.auto)."""

from __future__ import annotations

import sys

__all__ = ["Progress", "print_plan", "driver_times"]


class Progress:
    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc="trials", unit="trial", file=sys.stderr,
                             dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int, postfix: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def print_plan(config, space, device, dataset, out_dir) -> None:
    """What is about to run, on stderr: the study, its data, space, device and budgets."""
    from ..units import KB

    b = config.budgets
    limits = [f"size <= {b.max_size_kb:g} KB" if b.max_size_kb else "", f"RAM <= {b.max_ram_kb:g} KB" if b.max_ram_kb else "",
              f"latency <= {b.max_latency_ms:g} ms on {device.name}" if b.max_latency_ms else "",
              f"energy <= {b.max_energy_uj:g} uJ" if b.max_energy_uj else ""]
    data = dataset.summary()
    lines = [f"search {config.name}: {config.trials} trained trials, strategy {config.sampler}, seed {config.seed}",
             f"  data    {config.dataset}: {data['train']} train / {data['val']} validation / {data['test']} test, "
             f"{data['image_size']} px, from {data['source']}",
             *[f"          {note}" for note in data["notes"]],
             f"  space   {space.name}: {', '.join(space.choices['quantization'])}, input "
             + "/".join(str(r) for r in space.choices["resolution"]) + " px",
             f"  device  {device.name} ({device.runtime}; latency "
             + ("measured on this host" if device.latency_source == "host_measurement" else f"in {device.name}'s ms, predicted")
             + ")",
             f"  budgets {', '.join(x for x in limits if x) or 'none'} (KB = {KB} bytes)",
             f"  log     {out_dir / 'search.log'}"]
    print("\n".join(lines), file=sys.stderr, flush=True)


def driver_times(ask_s, tell_s) -> dict:
    """The driver's time per ask and per tell (seconds each), median and 99th percentile in ms, and the counts."""
    import numpy as np

    out: dict = {"asks": len(ask_s), "tells": len(tell_s)}
    for name, values in (("ask", ask_s), ("tell", tell_s)):
        if values:
            out[f"{name}_p50"], out[f"{name}_p99"] = (round(1000 * float(np.percentile(values, q)), 1) for q in (50, 99))
    return out
