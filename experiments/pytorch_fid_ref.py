"""pytorch-fid's FID Inception-v3 with random weights: the reference for parity tests and benchmarks.

Needs ``torch``, ``torchvision`` and ``pytorch-fid`` (test and benchmark
dependencies only; ``.ci/run`` installs them). Nothing is downloaded: the
network is built by pytorch-fid's own code with its weight download skipped,
then every parameter and buffer is drawn at random, so a wrong conversion
cannot hide behind identity BatchNorms.
"""

from __future__ import annotations

import sys
import types


def import_pytorch_fid():
    """``(torch, pytorch_fid.inception)``.

    Raises:
      ImportError: with the reason, when one of the three packages is missing
        or cannot be imported.
    """
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        # PyPI's torchvision beside a locally built torch fails registering its
        # C operators ("operator torchvision::nms does not exist"); its Python
        # models, all pytorch-fid needs, import fine without them.
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules.setdefault("torchvision._meta_registrations",
                               types.ModuleType("torchvision._meta_registrations"))
        try:
            import torchvision  # noqa: F401
        except Exception as e:  # noqa: BLE001 - reported as the import failure it is
            raise ImportError(f"torchvision is not importable ({type(e).__name__}: {e})") from None
    from pytorch_fid import inception as pif

    return torch, pif


def random_fid_inception(seed: int = 0):
    """``(torch, net, wrapper)``: pytorch-fid's ``fid_inception_v3()`` with random weights, and its
    ``InceptionV3`` pool3 wrapper (``resize_input=True, normalize_input=True``) around that net.

    ``wrapper(x)`` takes NCHW images in [0, 1] and returns ``[pool3 [N, 2048, 1, 1]]``;
    ``net.fc(pool3)`` gives the 1008 logits.
    """
    torch, pif = import_pytorch_fid()
    saved = (pif.load_state_dict_from_url, torch.nn.Module.load_state_dict, pif.fid_inception_v3)
    try:
        pif.load_state_dict_from_url = lambda *a, **k: {}
        torch.nn.Module.load_state_dict = lambda self, *a, **k: None
        net = pif.fid_inception_v3()
        torch.nn.Module.load_state_dict = saved[1]
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.Conv2d):
                    module.weight.normal_(0.0, (2.0 / module.weight[0].numel()) ** 0.5, generator=g)
                elif isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.uniform_(0.5, 1.5, generator=g)
                    module.bias.normal_(0.0, 0.2, generator=g)
                    module.running_mean.normal_(0.0, 0.2, generator=g)
                    module.running_var.uniform_(0.5, 2.0, generator=g)
                elif isinstance(module, torch.nn.Linear):
                    module.weight.normal_(0.0, 2048 ** -0.5, generator=g)
                    module.bias.normal_(0.0, 0.1, generator=g)
                elif list(module.parameters(recurse=False)):
                    raise AssertionError(f"parameters of {type(module).__name__} were not randomised")
        net.eval()
        pif.fid_inception_v3 = lambda: net
        wrapper = pif.InceptionV3([pif.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                  normalize_input=True, use_fid_inception=True).eval()
    finally:
        pif.load_state_dict_from_url, torch.nn.Module.load_state_dict, pif.fid_inception_v3 = saved
    return torch, net, wrapper
