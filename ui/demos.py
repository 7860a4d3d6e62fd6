"""One-click demos: queue a linear-probe run on a built-in demo data set."""

from __future__ import annotations

from tlcore.config import FinetuneConfig
from tlcore.runs.records import Run
from ui import datasets
from ui.runs import start_run

# The demo shown for each modality on Home, and the backbone it uses (None: the modality's default).
HOME_DEMOS = {"image": "digits", "text": "sentiment", "audio": "spoken-digits"}
DEMO_BACKBONE = {"digits": "efficientnet-lite0-128", "fashion-shift": "efficientnet-lite0-128"}
# One-click demos compute the k-NN baseline only: the scratch baseline fully trains a random-init twin of the
# backbone (1-3 minutes on a laptop CPU), which would triple the wait. The Fine-tune page computes both.
DEMO_BASELINES = ["knn"]


def demo_config(name: str) -> FinetuneConfig:
    choice = datasets.resolve(f"demo:{name}")
    if choice is None:
        from tlcore.errors import ConfigError

        raise ConfigError(f"demo {name!r} is not available here")
    s = choice.splits
    return FinetuneConfig(modality=choice.modality, source=s.get("source"), target=s.get("target"), eval=s.get("eval"),
                          strategy="linear_probe", backbone=DEMO_BACKBONE.get(name), baselines=list(DEMO_BASELINES))


def launch_demo(name: str) -> Run:
    """Queue the demo run (training happens in the background worker) and return it."""
    cfg = demo_config(name)
    return start_run(cfg, name=f"demo {name} · linear probe", dataset=f"demo:{name}")
