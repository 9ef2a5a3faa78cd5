"""`python -m w2v.vqa`: train and evaluate the VQA-style classifier (w2v/conf/vqa.yaml)."""
from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from ..atomic import atomic_path
from ..cli import run_hydra_app, user_errors
from ..run_dir import parse_overwrite, prepare_run_dir, refuse_before_hydra
from .config import parse_vqa_config
from .run import run_vqa

VQA_OUTPUTS = ("metrics.json", "model.pt", "tb")


@hydra.main(version_base="1.3", config_path="../conf", config_name="vqa")
def hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with user_errors():
        raw = OmegaConf.to_container(cfg, resolve=True)
        run_cfg = parse_vqa_config(raw)
        prepare_run_dir(run_dir, resuming=False, overwrite=parse_overwrite(raw.get("overwrite", False)),
                        outputs=VQA_OUTPUTS, resumable=False)
        with atomic_path(run_dir / "config.resolved.yaml") as tmp:
            tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
        run_vqa(run_cfg, run_dir, cache_dir=Path(to_absolute_path(run_cfg.cache_dir)))


def main() -> None:
    run_hydra_app(hydra_main, lambda argv: refuse_before_hydra(argv, VQA_OUTPUTS, resumable=False))


if __name__ == "__main__":
    main()
