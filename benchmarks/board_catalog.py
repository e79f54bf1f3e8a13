"""The microcontroller board catalog's errors: per profile, per runtime family, leave-one-board-out.

    python benchmarks/board_catalog.py            # refit from latency_models/mlperf_tiny_cortex_m.csv (~1 min)
    python benchmarks/board_catalog.py --shipped  # read latency_models/mcu-catalog.json as shipped
    python benchmarks/board_catalog.py --shipped --bases   # and compare the boards' bases (Arm counts, host)

Leave-one-model-out: each published result is predicted by the joint model refitted without it.
New model: each reference model left out of every profile at once (what a search candidate is).
Leave-one-board-out: every profile of one board under one runtime is left out and predicted from the
board's clock and core class alone. Energy LOO: the profile's mean power from its other results times
the left-out latency prediction. Power LOO: each model's power against the mean of the others'. New model
energy: the new-model latency error compounded with the power LOO error, (1 + a)(1 + b) - 1, the error a
search candidate's energy carries. Targets (issue 18): catalog mean of loo_mean_pct <= 10%, no profile's
loo_max_pct > 30%, leave-one-board-out mean <= 20%.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _pair(mean, largest) -> str:
    return "-" if mean is None else f"{_pct(mean)} / {_pct(largest)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shipped", action="store_true", help="report the shipped artifact instead of refitting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bases", action="store_true",
                        help="also refit with every board on its core's Arm counts and on the host's, per family (needs `make arm`)")
    args = parser.parse_args()

    import numpy as np

    from nas.calibration import calibrate_boards
    from nas.latency import CATALOG_ARTIFACT, energy_errors, load_artifact

    if args.shipped:
        artifact = load_artifact(CATALOG_ARTIFACT)
        if artifact is None:
            raise SystemExit("no shipped latency_models/mcu-catalog.json: run `nas calibrate --boards`")
    else:
        artifact, _ = calibrate_boards(seed=args.seed)
    profiles = artifact["profiles"]
    print(f"## Per profile ({len(profiles)} profiles, {artifact['validation']['rows']} published results)\n")
    print("| profile | core | MHz | runtime | refs | LOO mean | LOO max | new model mean / max | LOBO | energy LOO mean | "
          "power LOO mean / max | new model energy mean / max | per model LOO error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, e in profiles.items():
        per_model = ", ".join(f"{ref.split()[0]} {100 * (r['loo_ms'] / r['published_ms'] - 1):+.0f}%" for ref, r in e["refs"].items())
        lobo = e["lobo"].get("mean_abs_error_pct")
        print(f"| {name} | {e['core']} | {e['clock_mhz']:g} | {e['runtime']} {e['version']} | {len(e['refs'])} | "
              f"{_pct(e['loo_mean_pct'])} | {_pct(e['loo_max_pct'])} | {_pct(e['unseen_mean_pct'])} / {_pct(e['unseen_max_pct'])} | "
              f"{_pct(lobo) if lobo is not None else e['lobo'].get('note', '-')} | "
              f"{_pct(e['energy_loo_mean_pct'])} | {_pair(e.get('power_loo_mean_pct'), e.get('power_loo_max_pct'))} | "
              f"{_pair(*energy_errors(e, e['unseen_mean_pct'], e['unseen_max_pct']))} | {per_model} |")
    print("\n## Per runtime family\n")
    print("| family | profiles | LOO mean | LOO max (worst profile) | LOBO mean (profiles) |")
    print("|---|---|---|---|---|")
    families: dict[str, list[dict]] = {}
    for e in profiles.values():
        families.setdefault(e["runtime"], []).append(e)
    for family, members in sorted(families.items()):
        lobo = [m["lobo"]["mean_abs_error_pct"] for m in members if "mean_abs_error_pct" in m["lobo"]]
        print(f"| {family} | {len(members)} | {np.mean([m['loo_mean_pct'] for m in members]):.1f}% | "
              f"{max(m['loo_max_pct'] for m in members):.1f}% | "
              + (f"{np.mean(lobo):.1f}% ({len(lobo)})" if lobo else "- (one board)") + " |")
    v = artifact["validation"]
    cores = sorted({e["core"] for e in profiles.values()})
    print("\n## Catalog against the targets\n")
    print(f"- profiles: {len(profiles)} covering {', '.join(cores)}")
    print(f"- catalog mean of loo_mean_pct: {v['loo_mean_pct']:.1f}% (target <= 10%)")
    over = v["profiles_over_30pct"]
    print(f"- profiles with loo_max_pct > 30%: {len(over)} (target 0){': ' + ', '.join(over) if over else ''}")
    print(f"- leave-one-board-out mean: {_pct(v['lobo_mean_pct'])} over {v['lobo_boards']} profiles (target <= 20%)")
    print(f"- a model no board has run (each reference model left out of every profile): mean {_pct(v['unseen_mean_pct'])}, "
          f"largest {_pct(v['unseen_max_pct'])}; this is the error a search candidate's latency carries")
    print(f"- energy leave-one-model-out mean: {_pct(v['energy_loo_mean_pct'])} over {v['energy_profiles']} profiles; "
          f"power leave-one-model-out mean {_pct(v.get('power_loo_mean_pct'))}; a model no board has run: mean "
          f"{_pct(v.get('energy_unseen_mean_pct'))}, largest {_pct(v.get('energy_unseen_max_pct'))} (the error a search "
          "candidate's energy carries)")
    print(f"- prior spreads (log units): {artifact['prior_sd']}, residual {artifact['residual_sd']}")
    print("- left out: " + "; ".join(artifact["left_out"]))
    if args.bases:
        compare_bases(args.seed)
    return 0


def compare_bases(seed: int) -> None:
    """The catalog fitted with each profile's base chosen three ways: as shipped (`base_device`); every
    profile on its core's CMSIS-NN Arm counts where a build emulates the core; every profile on the
    host TFLite Micro instructions (the catalog before the Arm counts). Per runtime family and overall."""
    import numpy as np

    from nas.calibration import HOST_BASE, HOST_SHAPED, base_device, board_profiles, fit_joint, reference_class_instructions

    profiles = board_profiles()
    shipped = {p.name: base_device(p) for p in profiles}
    arm = {p.name: base_device(p, host_shaped=()) for p in profiles}
    host = {p.name: HOST_BASE for p in profiles}
    refs, _ = reference_class_instructions(set(arm.values()) | {HOST_BASE}, seed)
    fits = {label: fit_joint(profiles, refs, bases)["profiles"]
            for label, bases in (("shipped", shipped), ("Arm counts", arm), ("host", host))}
    print(f"\n## Bases compared (host-shaped families as shipped: {', '.join(HOST_SHAPED)})\n")
    print("| family | profiles | " + " | ".join(f"{k}: new model mean / max, LOO mean" for k in fits) + " |")
    print("|---|---|" + "---|" * len(fits))
    families = sorted({p.runtime for p in profiles})
    for family in [*families, "all"]:
        names = [p.name for p in profiles if family in (p.runtime, "all")]
        cells = []
        for fit in fits.values():
            entries = [fit[n] for n in names]
            cells.append(f"{np.mean([e['unseen_mean_pct'] for e in entries]):.1f}% / "
                         f"{max(e['unseen_max_pct'] for e in entries):.1f}%, {np.mean([e['loo_mean_pct'] for e in entries]):.1f}%")
        print(f"| {family} | {len(names)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
