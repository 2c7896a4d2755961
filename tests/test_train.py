"""The trainer: augmentation, schedules, determinism, learning, and failure."""

import math

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite import train
from natmu_lite.methods.base import working_copy
from natmu_lite.train import augment, lr_multiplier

from .conftest import same_weights, synthetic


def test_crop_is_a_window_of_the_zero_padded_image():
    x = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = augment(x, padding=2, flip=False, generator=torch.Generator().manual_seed(0))
    padded = F.pad(x, (2, 2, 2, 2))
    shifts = set()
    for i in range(16):
        windows = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert windows, f"image {i} is not a crop of its padded self"
        shifts.add(windows[0])
    assert len(shifts) > 3  # offsets are drawn per image


def test_flip_is_per_image():
    x = torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8)
    out = augment(x, padding=0, flip=True, generator=torch.Generator().manual_seed(0))
    same = [torch.equal(out[i], x[i]) for i in range(64)]
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(64)]
    assert all(a or b for a, b in zip(same, flipped))
    assert 10 < sum(flipped) < 54


def test_schedules():
    assert lr_multiplier("step", 0, 100, warmup=10) == 0
    assert lr_multiplier("step", 5, 100, warmup=10) == 0.5
    assert [lr_multiplier("step", s, 100) for s in (10, 59, 60, 79, 80, 99)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert lr_multiplier("cosine", 0, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 100)))
    assert lr_multiplier("cosine", 99, 100) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="valid: cosine, step"):
        lr_multiplier("wiggly", 0, 10)


@pytest.mark.slow
def test_training_learns_and_is_deterministic():
    data = synthetic()
    recipe = nl.Recipe("sgd", lr=0.05, epochs=8, batch_size=32, schedule="step", warmup_epochs=1, flip=True)
    a = nl.train_original(data, "small_cnn", recipe, seed=3, progress=False)
    b = nl.train_original(data, "small_cnn", recipe, seed=3, progress=False)
    acc = (nl.predict(a, data.test_x).argmax(1) == data.test_y).float().mean().item()
    assert acc > 0.9
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_augment_mask_leaves_marked_samples_alone():
    """With lr 0 nothing trains; we check which inputs the model saw through a forward hook."""
    data = synthetic(n_per_class=4)
    model = nl.model_for("small_cnn", data)
    seen = []
    model.normalize.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    mask = torch.arange(len(data.train_y)) % 2 == 0
    nl.fit(model, data.train_x, data.train_y, nl.Recipe(lr=0.0, epochs=1, batch_size=1000, crop_padding=2,
           flip=True), augment_mask=mask, progress=False)
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))
    batch = (seen[0] * 255).round().to(torch.uint8)
    originals = data.train_x[order]
    unchanged = torch.tensor([torch.equal(batch[i], originals[i]) for i in range(len(order))])
    assert unchanged[~mask[order]].all()  # unmarked samples are never augmented
    assert not unchanged[mask[order]].all()


def test_divergence_is_reported():
    data = synthetic(n_per_class=4)
    model = nl.model_for("small_cnn", data)
    with pytest.raises(FloatingPointError, match="diverged"):
        nl.fit(model, data.train_x, data.train_y, nl.Recipe("sgd", lr=1e12, epochs=3), progress=False)


def test_bad_recipes_and_inputs():
    data = synthetic(n_per_class=2)
    model = nl.model_for("small_cnn", data)
    with pytest.raises(ValueError, match="valid: sgd, adamw"):
        nl.fit(model, data.train_x, data.train_y, nl.Recipe("lion"), progress=False)
    with pytest.raises(ValueError, match="targets"):
        nl.fit(model, data.train_x, data.train_y[:3], nl.Recipe(), progress=False)


def test_callback_sees_every_epoch():
    data = synthetic(n_per_class=2)
    epochs = []
    nl.fit(nl.model_for("small_cnn", data), data.train_x, data.train_y, nl.Recipe(epochs=3),
           callback=lambda e, m: epochs.append(e), progress=False)
    assert epochs == [0, 1, 2]


def test_fit_adds_extra_loss_once_per_step_and_nothing_else(tiny_request):
    """``extra_loss(model, step, total)`` sees every step once, in order, with the run's step count; a
    zero term leaves the run bit-identical to one without the hook (so existing calls are unchanged)."""
    data, _, original = tiny_request
    recipe = nl.Recipe(epochs=3, batch_size=64)
    seen = []

    def zero(model, step, total):
        seen.append((step, total))
        return torch.zeros(())

    plain = nl.fit(working_copy(original), data.train_x, data.train_y, recipe, seed=3, progress=False)
    hooked = nl.fit(working_copy(original), data.train_x, data.train_y, recipe, seed=3, extra_loss=zero,
                    progress=False)
    total = 3 * math.ceil(len(data.train_x) / 64)
    assert seen == [(s, total) for s in range(total)]
    assert same_weights(plain, hooked)


def fake_gpu(monkeypatch, capability: tuple[int, int], name: str, available: bool = True) -> None:
    """A CUDA device of this compute capability, as far as the precision decision and its messages can tell
    (``available=False``: the tensors stay on the CPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.parametrize("capability,name,expected", [((7, 5), "Tesla T4", "fp16"), ((6, 0), "Tesla P100", "fp16"),
                                                      ((8, 0), "NVIDIA A100", "bf16"), ((9, 0), "NVIDIA H200", "bf16")])
def test_a_gpu_without_native_bf16_trains_in_fp16_and_every_notebook_says_so(monkeypatch, capability, name, expected):
    """bf16 is native from compute capability 8.0; below (Colab's T4: 7.5) it is only emulated, so fp16
    autocast with a gradient scaler runs instead, and the device line every notebook prints says which."""
    from natmu_lite.notebook import where

    fake_gpu(monkeypatch, capability, name)
    assert train.precision("cuda") == expected
    assert train.precision("cuda", mixed=False) == train.precision("cpu") == "fp32"  # Recipe(bf16=False); the CPU
    line = where()
    assert f"running on cuda ({name}, compute capability {capability[0]}.{capability[1]})" in line
    assert f"training in {train.PRECISIONS[expected]}" in line
    assert ("no native bf16" in line) == (expected == "fp16")


def test_fp16_training_scales_its_loss_learns_and_says_so(monkeypatch):
    """The fp16 path, run on the CPU (whose autocast has fp16 too): the gradient scaler scales the loss of
    every step, the model still learns, and a warning names the GPU and why it trains in fp16."""
    fake_gpu(monkeypatch, (7, 5), "Tesla T4", available=False)
    monkeypatch.setattr(train, "precision", lambda device, mixed=True: "fp16" if mixed else "fp32")
    scalers, make = [], train.grad_scaler
    monkeypatch.setattr(train, "grad_scaler", lambda *args: scalers.append(make(*args)) or scalers[-1])
    data = synthetic(n_per_class=10, k=4)
    with pytest.warns(UserWarning, match=r"original: Tesla T4 has no native bf16 \(compute capability 7\.5\): "
                                         "training in fp16 autocast with a gradient scaler"):
        model = nl.train_original(data, "small_cnn", nl.Recipe("sgd", lr=0.05, epochs=4, batch_size=16),
                                  progress=False)
    assert len(scalers) == 1 and scalers[0].is_enabled() and scalers[0].get_scale() > 1
    assert nl.metrics.accuracy(nl.predict(model, data.train_x), data.train_y) > 80
