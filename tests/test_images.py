"""Image data for the CNN search: CIFAR pickles, image folders, augmentation."""

from pathlib import Path

import pytest
import torch

from conftest import make_cifar, make_image_folder
from wpl.data.augment import augment, normalise
from wpl.data.images import load_images
from wpl.errors import WplError


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar_pickles_load_with_either_key_style(tmp_path: Path, str_keys: bool) -> None:
    make_cifar(tmp_path, per_batch=20, str_keys=str_keys)
    d = load_images(tmp_path, "cifar10", valid_size=10, seed=0)
    assert d.train_x.shape == (90, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert len(d.valid_x) == 10 and len(d.test_x) == 20 and d.classes[0] == "airplane"
    assert len(d.mean) == 3 and all(0 < s for s in d.std)


def test_cifar_errors_name_the_file(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    (folder / "data_batch_3").unlink()
    with pytest.raises(WplError, match="data_batch_3: missing"):
        load_images(tmp_path, "cifar10", valid_size=10)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(WplError, match="data_batch_3: not a readable CIFAR-10 pickle"):
        load_images(tmp_path, "cifar10", valid_size=10)


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    import pickle

    make_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(WplError, match="refusing to load builtins.print"):
        load_images(tmp_path, "cifar10", valid_size=10)


def test_image_folder_loads_resizes_and_keeps_its_valid_split(tmp_path: Path) -> None:
    make_image_folder(tmp_path, size=20)
    d = load_images(tmp_path, "shapes", valid_size=5000, size=(16, 16))
    assert d.classes == ["bottom", "top"] and d.shape == (3, 16, 16)
    assert len(d.train_x) == 24 and len(d.valid_x) == 24 and len(d.test_x) == 24
    top = d.train_x[d.train_y == 1].float()
    assert top[:, :, :8].mean() > top[:, :, 8:].mean() + 50  # the class's bright half survived the resize


def test_image_folder_without_valid_holds_out_training_images(tmp_path: Path) -> None:
    make_image_folder(tmp_path, valid=False)
    d = load_images(tmp_path, "shapes", valid_size=6)
    assert len(d.train_x) == 18 and len(d.valid_x) == 6
    with pytest.raises(WplError, match="valid_size=5000: must be between 1 and 23"):
        load_images(tmp_path, "shapes", valid_size=5000)


def test_images_directly_in_a_split_are_a_clear_error(tmp_path: Path) -> None:
    make_image_folder(tmp_path, valid=False)
    from PIL import Image

    flat = tmp_path / "flat" / "train"
    flat.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    (tmp_path / "flat" / "test").mkdir()
    with pytest.raises(WplError, match="one sub-folder per class"):
        load_images(tmp_path, "flat", valid_size=1)
    with pytest.raises(WplError, match="no such folder"):
        load_images(tmp_path, "nothing", valid_size=1)


def test_unknown_class_in_test_is_an_error(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    (tmp_path / "shapes" / "test" / "left").mkdir()
    with pytest.raises(WplError, match="class 'left' is not among the training classes"):
        load_images(tmp_path, "shapes", valid_size=1)


def test_augmentation_shapes_ranges_and_determinism() -> None:
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    plain = normalise(x, mean, std)
    assert plain.min() >= -2.0 - 1e-6 and plain.max() <= 2.0 + 1e-6
    a = augment(x, mean, std, torch.Generator().manual_seed(0), pad=2, cutout=3)
    b = augment(x, mean, std, torch.Generator().manual_seed(0), pad=2, cutout=3)
    assert a.shape == x.shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert (a == 0).sum(dim=(1, 2, 3)).min() >= 3 * 9  # every image has its 3×3 cutout (zeros = the mean)
    # with no padding, no flip and no cutout it is just normalisation
    assert torch.equal(augment(x, mean, std, torch.Generator(), pad=0, flip=False), plain)
    # a crop only shifts: every output row is a shifted input row or padding
    c = augment(x, mean, std, torch.Generator().manual_seed(1), pad=1, flip=False)
    row = c[0, 0, 3]
    src = plain[0, 0]
    assert any(torch.allclose(row[1:-1], src[r, s:s + 6]) for r in range(8) for s in range(3))


def test_batch_scope_augmentation_moves_every_image_alike() -> None:
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    img = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    x = img.repeat(32, 1, 1, 1)  # one image, 32 times: any difference between outputs is a per-image draw
    per_image = augment(x, mean, std, torch.Generator().manual_seed(0), pad=2, cutout=3)
    per_batch = augment(x, mean, std, torch.Generator().manual_seed(0), pad=2, cutout=3, per_batch=True)
    assert not all(torch.equal(per_image[0], v) for v in per_image[1:])
    assert all(torch.equal(per_batch[0], v) for v in per_batch[1:])
    # over batches the draws still vary: some batches are flipped or shifted, others not
    g = torch.Generator().manual_seed(1)
    firsts = {augment(img, mean, std, g, pad=2, per_batch=True).sum().item() for _ in range(20)}
    assert len(firsts) > 1


def test_folder_splits_are_shuffled_so_eval_batches_mix_classes(tmp_path: Path) -> None:
    make_image_folder(tmp_path, per_class=12)
    d = load_images(tmp_path, "shapes", valid_size=1)
    first = d.test_y[:8]
    assert 0 < int(first.sum()) < 8  # not one class after the other
