"""The data a search learns from: the dataset registry, readers of the standard file formats,
and the preparation (resize, grey/RGB, [0, 1]) shared by training and every converted model.

    Dataset, DATASETS, load_dataset, dataset_names, prepare     (`_datasets`)
    DataSplit                                                   which split a result used, to check before comparing (`_split`)
    Augmentation, AUGMENTATIONS, augmentation_for, augment_batch  per-dataset training augmentation (`_augment`)
    read_idx, write_idx, read_npz_splits, read_image_folder     (`_formats`)
    fetch_dataset, remote_files, download                       the official files, downloaded and verified (`_fetch`)
    synth_keywords, espeak_voices, KeywordSet, ...              a keyword set spoken by eSpeak NG, split by voice (`_keywords`)
"""

from ._augment import AUGMENTATIONS, NO_AUGMENTATION, Augmentation, augment_batch, augmentation_for
from ._datasets import DATASETS, Dataset, dataset_names, load_dataset, prepare
from ._fetch import MEDMNIST_SIZES, MIRROR_ENV, REMOTE_FILES, RemoteFile, default_data_dir, download, fetch_dataset, remote_files
from ._keywords import (ACCENTS, KEYWORDS_FORMAT, SAMPLE_RATE, SILENCE, UNKNOWN, UNKNOWN_WORDS, KeywordSet, espeak_voices,
                        synth_keywords)
from ._formats import IMAGE_SUFFIXES, read_idx, read_image_folder, read_npz_splits, write_idx
from ._split import DataSplit

__all__ = ["AUGMENTATIONS", "NO_AUGMENTATION", "Augmentation", "augment_batch", "augmentation_for", "DATASETS", "Dataset", "dataset_names", "load_dataset", "prepare", "IMAGE_SUFFIXES", "read_idx",
           "read_image_folder", "read_npz_splits", "write_idx", "MEDMNIST_SIZES", "MIRROR_ENV", "REMOTE_FILES", "RemoteFile",
           "default_data_dir", "download", "fetch_dataset", "remote_files", "DataSplit", "ACCENTS", "KEYWORDS_FORMAT",
           "SAMPLE_RATE", "SILENCE", "UNKNOWN", "UNKNOWN_WORDS", "KeywordSet", "espeak_voices", "synth_keywords"]
