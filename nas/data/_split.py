"""Which images a model learnt from and was tested on: a dataset's split, recorded so that two
results can be checked to come from the same one before they are compared.

The fingerprint is `Dataset.fingerprint` (the dataset's name and every split's images and labels,
hashed), the one a study stores in its identity: it changes with the seed wherever the seed draws a
split (digits' test split, every dataset's validation split), with the files read, and with the
stored image size; it is the same for the same files, seed and size. The other fields say in words
what differs when two fingerprints do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..errors import DataError

__all__ = ["DataSplit"]


@dataclass(frozen=True)
class DataSplit:
    dataset: str
    seed: int
    train: int  # images in each split
    val: int
    test: int
    image_size: int  # the stored size read (a MedMNIST variant, or the size image folders were read at)
    source: str  # where the images were read from
    fingerprint: str  # `Dataset.fingerprint`

    @classmethod
    def of(cls, dataset, seed: int) -> "DataSplit":
        """The split of `dataset` (a `Dataset`, loaded with `seed`)."""
        return cls(dataset.name, int(seed), len(dataset.y_train), len(dataset.y_val), len(dataset.y_test),
                   dataset.image_size, dataset.source, dataset.fingerprint)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "<split>") -> "DataSplit":
        names = [f.name for f in fields(cls)]
        if not isinstance(data, Mapping) or set(data) != set(names):
            raise DataError(f"{where}: not a split record (expected the keys {', '.join(names)})")
        return cls(**{name: data[name] for name in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """'seed 0 (digits, 1295/143/359 train/val/test images)'."""
        return f"seed {self.seed} ({self.dataset}, {self.train}/{self.val}/{self.test} train/val/test images)"

    def differences(self, other: "DataSplit") -> str:
        """What differs between this split and `other`, in words ('' when they are the same split)."""
        if self.fingerprint == other.fingerprint:
            return ""
        named = [f"{key} {getattr(self, key)} vs {getattr(other, key)}" for key in ("dataset", "seed", "image_size")
                 if getattr(self, key) != getattr(other, key)]
        sizes = (self.train, self.val, self.test), (other.train, other.val, other.test)
        if sizes[0] != sizes[1]:
            named.append("split sizes " + " vs ".join("/".join(map(str, s)) for s in sizes))
        if not named:  # same dataset, seed and sizes: other files, or the same files split another way
            named.append(f"the images differ (read from {self.source} vs {other.source})")
        return ", ".join(named)
