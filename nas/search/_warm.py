"""Warm start: an earlier study of the same space and device (another dataset, another budget)
already knows which specs are good; its best ones are tried first, and the report names them.

The specs taken are the earlier run's trained trials that no other dominates (its proxy accuracy
and the measured size, RAM, latency), within this study's budgets and space, most accurate first.
Each names the split its accuracy was measured on; when that is not this study's split (another
dataset, seed or data) a notice says so: on the same dataset the earlier study ranked its specs on
images that may be this study's test images, a mild leak worth knowing of.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..logs import notice
from ..spec import ArchSpec
from ._pareto import non_dominated
from ._screen import analytic_screen
from ._study import StudyConfig, load_run_config

__all__ = ["warm_start_specs", "warm_start_count"]


def warm_start_count(trials: int) -> int:
    """How many earlier specs go first: a quarter of the study's trials, 1 to 4."""
    return max(1, min(4, trials // 4))


def warm_start_specs(config: StudyConfig, space, device, in_channels: int, num_classes: int) -> list[tuple[ArchSpec, str]]:
    """(spec, source) of the earlier run's best specs that this study can use; ConfigError when the
    run is not a finished search of the same space and device."""
    import optuna

    from ._record import trained_rows
    from ._storage import storage_for

    run = Path(config.warm_start).expanduser()
    earlier = load_run_config(run)
    if earlier.space != config.space or earlier.device != config.device:
        raise ConfigError(f"warm_start: {run} searched space {earlier.space!r} on {earlier.device}; this study searches "
                          f"{config.space!r} on {config.device}: a warm start needs the same space and device")
    if not (run / "study.db").is_file():
        raise ConfigError(f"warm_start: {run} holds no study.db (a search with --storage keeps its study elsewhere)")
    try:
        study = optuna.load_study(study_name=earlier.name, storage=storage_for(run, None))
    except Exception as exc:  # not an Optuna study, or not this one
        raise ConfigError(f"warm_start: cannot read the study in {run}: {' '.join(str(exc).split())[:200]}") from None
    usable = []
    for row in trained_rows(study):
        spec = ArchSpec.from_json(row["spec"])
        try:
            space.validate(spec)
        except ConfigError:
            continue  # outside this study's (possibly narrower) space
        if config.budgets.admits(row) and analytic_screen(spec, in_channels, num_classes, config.budgets, device).feasible:
            usable.append({**row, "_spec": spec})
    objectives = [o for o in config.objectives if all(r.get(o) is not None for r in usable)]
    front = sorted(non_dominated(usable, objectives), key=lambda r: (-r["accuracy"], r["trial"]))
    picked, seen = [], set()
    for row in front:  # a spec the earlier study trained twice goes once
        if row["_spec"].hash not in seen and len(picked) < warm_start_count(config.trials):
            seen.add(row["_spec"].hash)
            picked.append(row)
    if not picked:
        return []
    split, other = _source_split(config, earlier, study)
    if other:
        same = earlier.dataset == config.dataset
        why = "its training and validation images may be this study's test images" if same else "another dataset"
        notice(f"warm start from {run}: its specs were ranked on {split}, not this study's split "
               f"({config.dataset} seed {config.seed}); {why}")
    note = split + ("; not this study's split" if other else "")
    return [(r["_spec"], f"warm start: {run.name} trial {r['trial']} (proxy accuracy {r['accuracy']:.3f} on {note})")
            for r in picked]


def _source_split(config: StudyConfig, earlier: StudyConfig, study) -> tuple[str, bool]:
    """The earlier study's split in words ('digits seed 0, split 3f7d3e8d2525919e'), and whether it
    is another split than this study's: the fingerprint it stored against this study's data read at
    the same stored image size (a split recorded by no fingerprint counts as another)."""
    from ..data import load_dataset

    identity = study.user_attrs.get("identity")
    identity = identity if isinstance(identity, dict) else {}
    fingerprint = identity.get("dataset_fingerprint")
    words = f"{earlier.dataset} seed {earlier.seed}, split " + (fingerprint or "not recorded")
    if earlier.dataset != config.dataset or not fingerprint:
        return words, True
    ours = load_dataset(config.dataset, config.data_dir, seed=config.seed, image_size=identity.get("image_size"))
    return words, ours.fingerprint != fingerprint
