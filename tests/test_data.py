import gzip

import numpy as np
import pytest

from nas.data import dataset_names, load_dataset, prepare
from nas.errors import DataError, UnknownNameError

from helpers import write_fashion_mnist, write_image_tree, write_medmnist


def test_registry_names():
    assert dataset_names() == ["digits", "fashion_mnist", "pneumonia", "skin_lesion"]


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as err:
        load_dataset("cifar10")
    assert "fashion_mnist" in str(err.value) and "digits" in str(err.value)


def test_digits_splits_are_disjoint_stratified_and_seeded():
    ds = load_dataset("digits")
    assert ds.num_classes == 10 and ds.channels == 1 and ds.image_size == 8
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert set(np.unique(ds.y_val)) == set(range(10)) == set(np.unique(ds.y_test))
    assert ds.x_train.dtype == np.uint8 and ds.x_train.max() == 255
    again = load_dataset("digits")
    assert np.array_equal(ds.y_val, again.y_val)
    assert not np.array_equal(ds.y_val, load_dataset("digits", seed=1).y_val)


def test_prepare_resizes_normalises_and_converts_channels():
    ds = load_dataset("digits")
    x = prepare(ds.x_val, 32, 1)
    assert x.shape == (len(ds.y_val), 32, 32, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    rgb = prepare(ds.x_val, 8, 3)
    assert rgb.shape[-1] == 3 and np.allclose(rgb[..., 0], ds.x_val[..., 0] / 255.0)


def test_class_weights_balance_an_imbalanced_set(tmp_path):
    write_medmnist(tmp_path / "pneumoniamnist.npz", classes=2, rgb=False)
    ds = load_dataset("pneumonia", tmp_path)
    w = ds.class_weights()
    counts = np.bincount(ds.y_train)
    assert w[0] * counts[0] == pytest.approx(w[1] * counts[1])


def test_fashion_mnist_from_idx_files(tmp_path):
    write_fashion_mnist(tmp_path)
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.image_size == 28 and ds.num_classes == 10
    assert len(ds.y_test) == 100 and len(ds.y_train) + len(ds.y_val) == 300
    assert "stratified" in " ".join(ds.notes)


def test_fashion_mnist_missing_files_name_them_and_the_folder(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value) and str(tmp_path) in str(err.value)
    write_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[: len(raw) // 2], "corrupt or truncated"),  # cut gzip stream
        (lambda raw: gzip.compress(gzip.decompress(raw)[:-100]), "truncated or padded"),
        (lambda raw: gzip.compress(b"\x01\x02\x03\x04" + gzip.decompress(raw)[4:]), "not an IDX file"),
        (lambda raw: b"not gzip at all", "corrupt or truncated"),
    ],
)
def test_fashion_mnist_corrupt_files_say_what_is_wrong(tmp_path, damage, message):
    write_fashion_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as err:
        load_dataset("fashion_mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_fashion_mnist_label_out_of_range(tmp_path):
    from helpers import write_idx

    write_fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(300, 12, np.uint8))
    with pytest.raises(DataError, match=r"labels must lie in \[0, 9\]"):
        load_dataset("fashion_mnist", tmp_path)


def test_medmnist_npz_and_size_variants(tmp_path):
    write_medmnist(tmp_path / "dermamnist.npz", classes=7, rgb=True)
    write_medmnist(tmp_path / "dermamnist_64.npz", classes=7, rgb=True, size=64)
    ds = load_dataset("skin_lesion", tmp_path)
    assert ds.num_classes == 7 and ds.channels == 3 and ds.image_size == 28
    assert len(ds.y_val) == 70  # the provided validation split
    assert load_dataset("skin_lesion", tmp_path, image_size=48).image_size == 64


def test_medmnist_missing_and_corrupt(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("pneumonia", tmp_path)
    assert "pneumoniamnist.npz" in str(err.value) and str(tmp_path) in str(err.value)
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DataError, match="corrupt"):
        load_dataset("pneumonia", tmp_path)


def test_npz_with_wrong_shapes_or_pickled_objects_is_refused(tmp_path):
    x = np.zeros((10, 28, 20), np.uint8)  # not square
    np.savez(tmp_path / "pneumoniamnist.npz", train_images=x, train_labels=np.zeros((10, 1), np.uint8))
    with pytest.raises(DataError, match="square grey or RGB"):
        load_dataset("pneumonia", tmp_path)
    objects = np.array([{"a": 1}] * 10, dtype=object)
    np.savez(tmp_path / "pneumoniamnist.npz", train_images=objects, train_labels=np.zeros(10, np.uint8))
    with pytest.raises(DataError, match="pickle"):
        load_dataset("pneumonia", tmp_path)


def test_empty_training_split_is_refused(tmp_path):
    np.savez(tmp_path / "pneumoniamnist.npz", train_images=np.zeros((0, 28, 28), np.uint8), train_labels=np.zeros((0, 1), np.uint8))
    with pytest.raises(DataError, match="empty"):
        load_dataset("pneumonia", tmp_path)


def test_folder_per_class_tree(tmp_path):
    write_image_tree(tmp_path / "chest_xray", ["NORMAL", "PNEUMONIA"])
    ds = load_dataset("pneumonia", tmp_path, image_size=24)
    assert ds.class_names == ("normal", "pneumonia")
    assert ds.image_size == 24 and ds.channels == 1
    assert len(ds.y_test) == 12 and set(ds.y_train) | set(ds.y_val) == {0, 1}


def test_folder_tree_with_a_broken_image(tmp_path):
    root = write_image_tree(tmp_path / "chest_xray", ["NORMAL", "PNEUMONIA"])
    (root / "train" / "NORMAL" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png is not a readable image"):
        load_dataset("pneumonia", tmp_path)


def test_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("fashion_mnist", tmp_path / "nope")
